package connlog

// Where renders f's conditions (DeviceId, Category, Level equalities and
// the TimeGenerated range, as nanoseconds since the Unix epoch) as SQL
// conjuncts with ? placeholders and their arguments, in the same order,
// for the log stores' Find. quote renders a column name.
func (f Filter) Where(quote func(string) string) (where []string, args []any) {
	eq := func(col, v string) {
		if v != "" {
			where = append(where, quote(col)+" = ?")
			args = append(args, v)
		}
	}
	eq(ColDeviceID, f.DeviceID)
	eq(ColCategory, f.Category)
	eq(ColLevel, f.Level)
	if !f.Since.IsZero() {
		where = append(where, "TimeGenerated >= ?")
		args = append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where = append(where, "TimeGenerated < ?")
		args = append(args, f.Until.UnixNano())
	}
	return where, args
}
