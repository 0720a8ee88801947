package syntax

// Query is one parsed SELECT statement.
type Query struct {
	At      int   // offset of SELECT
	Top     int64 // TOP n; meaningful when HasTop
	HasTop  bool
	TopPos  int
	Star    bool // SELECT *
	StarPos int
	Items   []*Item // the select list when not Star
	From    Source
	Where   Expr // nil without WHERE
	GroupBy []*Path
}

// Item is one entry of the select list: a path or an aggregate, with an
// optional alias.
type Item struct {
	Expr     Expr // *Path or *Aggregate
	Alias    string
	AliasPos int // -1 without AS
}

// Source is the collection after FROM, as written: devices, devices.modules.
type Source struct {
	At    int
	Names []string
}

// Expr is an expression node.
type Expr interface {
	Pos() int
	exprNode()
}

// Path is an attribute path: tags.location.region.
type Path struct {
	Segments []Segment
}

// Segment is one name of a path; Escaped when it was written [[name]].
type Segment struct {
	Name    string
	Escaped bool
	At      int
}

// LitKind tells literals apart.
type LitKind uint8

const (
	LitString LitKind = iota
	LitNumber
	LitTrue
	LitFalse
	LitNull
	LitUndefined
)

// Literal is a constant. Text is the decoded value of a string and the
// spelling of a number (with its sign when negative).
type Literal struct {
	At   int
	Kind LitKind
	Text string
}

// Binary is a binary operation. Op is canonical: OR AND = != < > <= >= + - * / %.
type Binary struct {
	At   int // the operator's offset
	Op   string
	L, R Expr
}

// Not is NOT x.
type Not struct {
	At int
	X  Expr
}

// Neg is -x for an x that is not a number literal (those fold the sign in).
type Neg struct {
	At int
	X  Expr
}

// In is x IN [..] or, with Negated, x NIN [..].
type In struct {
	At      int // the operator's offset
	Negated bool
	X       Expr
	List    []*Literal
}

// Call is a function call. Name is upper-cased.
type Call struct {
	At   int
	Name string
	Args []Expr
}

// Aggregate is COUNT() (Arg nil) or AVG/SUM/MIN/MAX(path) in a select list.
// Func is upper-cased.
type Aggregate struct {
	At   int
	Func string
	Arg  *Path
}

func (p *Path) Pos() int      { return p.Segments[0].At }
func (l *Literal) Pos() int   { return l.At }
func (b *Binary) Pos() int    { return b.L.Pos() }
func (n *Not) Pos() int       { return n.At }
func (n *Neg) Pos() int       { return n.At }
func (in *In) Pos() int       { return in.X.Pos() }
func (c *Call) Pos() int      { return c.At }
func (a *Aggregate) Pos() int { return a.At }

func (*Path) exprNode()      {}
func (*Literal) exprNode()   {}
func (*Binary) exprNode()    {}
func (*Not) exprNode()       {}
func (*Neg) exprNode()       {}
func (*In) exprNode()        {}
func (*Call) exprNode()      {}
func (*Aggregate) exprNode() {}

// Names returns the path's names.
func (p *Path) Names() []string {
	names := make([]string, len(p.Segments))
	for i, s := range p.Segments {
		names[i] = s.Name
	}
	return names
}
