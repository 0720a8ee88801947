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
