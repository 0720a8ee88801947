package sqlite

import "context"

// WriterPragma reads PRAGMA name on s's write connection.
func WriterPragma(s *Store, name string) (string, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	w, err := s.writer(context.Background())
	if err != nil {
		return "", err
	}
	var v string
	err = w.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v)
	return v, err
}

// ChunkSize exposes chunkSize.
var ChunkSize = chunkSize

// SetPageSize makes the next new databases use page size n (benchmarks
// compare page sizes); the returned function restores the default.
func SetPageSize(n int) (restore func()) {
	old := pageSize
	pageSize = n
	return func() { pageSize = old }
}
