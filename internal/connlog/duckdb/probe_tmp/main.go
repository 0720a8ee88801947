package main

import (
	"database/sql"
	"fmt"
	"os"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

func main() {
	c, err := duckdb.NewConnector(os.Args[1]+"?threads=2", nil)
	if err != nil {
		panic(err)
	}
	db := sql.OpenDB(c)
	for _, q := range os.Args[2:] {
		for range 2 {
			t := time.Now()
			rows, err := db.Query(q)
			if err != nil {
				fmt.Println(err)
				continue
			}
			n := 0
			var last []any
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				rows.Scan(ptrs...)
				last = vals
				n++
			}
			rows.Close()
			fmt.Printf("%v rows=%d %s\n", time.Since(t), n, q)
			if len(last) == 2 {
				fmt.Println(last[1])
			}
		}
	}
}
