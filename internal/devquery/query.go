package devquery

import (
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tether-hub/tether/internal/devquery/syntax"
)

// Doc is one device's document (its twin in the service shape).
type Doc interface {
	// Lookup returns the value at path: nil (JSON null), bool, json.Number
	// or float64 (other Go numbers work too), string, map[string]any or
	// []any. ok is false when the path is undefined.
	Lookup(path []string) (any, bool)
	// MarshalJSON renders the whole document, for SELECT *.
	json.Marshaler
}

// Retainer is a Doc that a Source reuses from one device to the next:
// Run keeps the copy Retain returns, so a scan allocates only for the
// documents that end up on the page.
type Retainer interface {
	Retain() Doc
}

// Source yields documents in ascending device-id order, starting after
// `after` ("" = from the start), until fn returns false.
type Source interface {
	Scan(after string, fn func(id string, d Doc) bool)
}

// SyntaxError is what Parse returns for any mistake in a query: bad
// syntax, an unknown function, a rule of GROUP BY, a limit, or a feature
// Tether does not support. Error() reads "line 1, column 34: …".
type SyntaxError = syntax.Error

// Item types for the x-ms-item-type response header.
const (
	ItemTwin = "twin" // SELECT *: every item is a twin
	ItemRaw  = "raw"  // projections and aggregates: plain JSON objects
)

// Query is a parsed, checked and compiled query. It is immutable and safe
// for concurrent use.
type Query struct {
	ast    *syntax.Query
	text   string
	hash   [8]byte
	where  condFn // nil: every document matches
	items  []projection
	agg    *aggPlan // nil unless the query aggregates
	top    int64
	hasTop bool
}

// projection is one attribute of a non-aggregate select list.
type projection struct {
	name string
	path []string
}

// Parse parses and checks q. Every error is a *SyntaxError.
func Parse(q string) (*Query, error) {
	ast, err := syntax.Parse(q)
	if err != nil {
		return nil, err
	}
	c := &compiler{src: q}
	if err := c.source(ast.From); err != nil {
		return nil, err
	}
	query := &Query{ast: ast, text: ast.String(), top: ast.Top, hasTop: ast.HasTop}
	if ast.Where != nil {
		if query.where, err = c.cond(ast.Where); err != nil {
			return nil, err
		}
	}
	if err := c.selectList(query); err != nil {
		return nil, err
	}
	query.hash = queryHash(query.text)
	return query, nil
}

// source accepts FROM devices (in any case) and refuses the rest clearly.
func (c *compiler) source(s syntax.Source) error {
	full := strings.Join(s.Names, ".")
	switch {
	case len(s.Names) == 1 && strings.EqualFold(s.Names[0], "devices"):
		return nil
	case len(s.Names) == 2 && strings.EqualFold(s.Names[0], "devices") &&
		(strings.EqualFold(s.Names[1], "modules") || strings.EqualFold(s.Names[1], "jobs")):
		return c.errorf(s.At, "FROM %s is not supported: Tether has device twins only; query FROM devices", full)
	}
	return c.errorf(s.At, "unknown collection '%s'; the collection of device twins is devices", full)
}

func (c *compiler) selectList(q *Query) error {
	ast := q.ast
	if ast.Star {
		if len(ast.GroupBy) > 0 {
			return c.errorf(ast.StarPos, "SELECT * cannot be grouped; select the GROUP BY attributes and aggregates such as COUNT()")
		}
		return nil
	}
	aggregates := len(ast.GroupBy) > 0
	for _, it := range ast.Items {
		if _, ok := it.Expr.(*syntax.Aggregate); ok {
			aggregates = true
		}
	}
	if aggregates {
		plan, err := c.aggregate(ast)
		if err != nil {
			return err
		}
		q.agg = plan
		return nil
	}
	names := map[string]bool{}
	for _, it := range ast.Items {
		path, err := c.path(it.Expr.(*syntax.Path))
		if err != nil {
			return err
		}
		name, err := c.memberName(it, path, names, 0)
		if err != nil {
			return err
		}
		q.items = append(q.items, projection{name: name, path: path})
	}
	return nil
}

// memberName is the name an item gets in the result: its alias, the last
// name of its path, or $1, $2 … for unnamed aggregates, as Cosmos DB names
// them. unnamed is the 1-based number of an unnamed aggregate.
func (c *compiler) memberName(it *syntax.Item, path []string, seen map[string]bool, unnamed int) (string, error) {
	name := ""
	switch {
	case it.AliasPos >= 0:
		name = it.Alias
	case path != nil:
		name = path[len(path)-1]
	default:
		name = "$" + strconv.Itoa(unnamed)
	}
	if seen[name] {
		at := it.Expr.Pos()
		if it.AliasPos >= 0 {
			at = it.AliasPos
		}
		return "", c.errorf(at, "two items of the select list are named '%s'; rename one with AS", name)
	}
	seen[name] = true
	return name, nil
}

// queryHash binds continuation tokens to one query.
func queryHash(text string) [8]byte {
	sum := sha256.Sum256([]byte(text))
	return [8]byte(sum[:8])
}

// String is the query in canonical form (keywords upper case, single
// spaces); parsing it gives the same query.
func (q *Query) String() string { return q.text }

// ItemType is the x-ms-item-type of the query's results: ItemTwin for
// SELECT *, ItemRaw otherwise.
func (q *Query) ItemType() string {
	if q.ast.Star {
		return ItemTwin
	}
	return ItemRaw
}

// Aggregate reports whether the query computes over all matching
// documents (COUNT, GROUP BY …) rather than returning them one by one.
func (q *Query) Aggregate() bool { return q.agg != nil }

// Match reports whether d satisfies the WHERE condition: only a condition
// that evaluates to true matches; false, null and undefined do not.
func (q *Query) Match(d Doc) bool {
	if q.where == nil {
		return true
	}
	return q.where(d) == yes
}
