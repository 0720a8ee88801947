package devquery

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/*.txt")

// TestScripts runs the script files of testdata/. A file holds
// directives separated by blank lines:
//
//	# comment
//	docs                        the fleet from here on: one JSON twin per
//	{"deviceId": "a", …}        line (numbers kept exact)
//	query [pagesize=N]
//	<query, any number of lines>
//	----
//	<expected: the item type, then one JSON item per line; "-- page N"
//	 between pages; or "error: message">
//
// -update rewrites the expected blocks with what Run returns.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no script files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var out []string
	src := newFleet()
	queries := 0
	for i := 0; i < len(lines); {
		line := lines[i]
		switch {
		case line == "docs":
			out = append(out, line)
			src = newFleet()
			for i++; i < len(lines) && lines[i] != ""; i++ {
				d := decodeDoc(t, lines[i], true)
				id, _ := d["deviceId"].(string)
				src.put(id, d)
				out = append(out, lines[i])
			}
		case strings.HasPrefix(line, "query"):
			queries++
			out = append(out, line)
			pageSize := 0
			if f := strings.Fields(line); len(f) > 1 {
				pageSize, _ = strconv.Atoi(strings.TrimPrefix(f[1], "pagesize="))
			}
			var text []string
			for i++; i < len(lines) && lines[i] != "----"; i++ {
				text = append(text, lines[i])
				out = append(out, lines[i])
			}
			out = append(out, "----")
			var expected []string
			for i++; i < len(lines) && lines[i] != ""; i++ {
				expected = append(expected, lines[i])
			}
			got := scriptResult(strings.Join(text, "\n"), src, pageSize)
			if !*update && strings.Join(got, "\n") != strings.Join(expected, "\n") {
				t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", path, strings.Join(text, " "), strings.Join(got, "\n"), strings.Join(expected, "\n"))
			}
			out = append(out, got...)
		case line == "" || strings.HasPrefix(line, "#"):
			out = append(out, line)
			i++
		default:
			t.Fatalf("%s:%d: unknown directive %q", path, i+1, line)
		}
	}
	if queries == 0 {
		t.Errorf("%s holds no queries", path)
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scriptResult runs text over every page and renders what came back.
func scriptResult(text string, src Source, pageSize int) []string {
	q, err := Parse(text)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	token := ""
	for page := 1; ; page++ {
		p, err := q.Run(src, pageSize, token)
		if err != nil {
			return append(out, "error: "+err.Error())
		}
		if page == 1 {
			out = append(out, p.ItemType)
		} else {
			out = append(out, "-- page "+strconv.Itoa(page))
		}
		for _, it := range p.Items {
			b, err := json.Marshal(it)
			if err != nil {
				return append(out, "error: "+err.Error())
			}
			out = append(out, string(b))
		}
		if p.Continuation == "" {
			return out
		}
		token = p.Continuation
	}
}
