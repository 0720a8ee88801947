package syntax

import "time"

// Query is a whole query: scalar let bindings, then one tabular pipeline.
type Query struct {
	Lets []*Let
	Body *Pipeline
}

// Let binds a name to a scalar expression: let n = 10;
type Let struct {
	At    Pos
	Name  *Ident
	Value Expr
}

// Pipeline is Source | op | op ….
type Pipeline struct {
	Source *Ident
	Ops    []Operator
}

// Operator is one tabular operator of a pipeline.
type Operator interface {
	Pos() Pos
	opNode()
}

// Assign is "Name = Value" or a bare Value (Name nil) in extend, project
// and summarize lists.
type Assign struct {
	Name  *Ident
	Value Expr
}

// SortKey is one key of order by / top: Desc is KQL's default.
type SortKey struct {
	Expr Expr
	Desc bool
	// Nulls is "" (the default for the direction), "first" or "last".
	Nulls string
	// Explicit records that asc/desc was written (for printing).
	Explicit bool
}

type (
	Where struct {
		At   Pos
		Pred Expr
	}
	Extend struct {
		At      Pos
		Assigns []*Assign
	}
	Project struct {
		At    Pos
		Items []*Assign
	}
	ProjectAway struct {
		At    Pos
		Names []*Ident
	}
	ProjectRename struct {
		At    Pos
		Items []*Rename
	}
	Distinct struct {
		At   Pos
		All  bool // distinct *
		Cols []*Ident
	}
	Summarize struct {
		At   Pos
		Aggs []*Assign
		By   []*Assign
	}
	Sort struct {
		At      Pos
		Keyword string // "order" or "sort"
		Keys    []*SortKey
	}
	Take struct {
		At      Pos
		Keyword string // "take" or "limit"
		N       Expr
	}
	Top struct {
		At  Pos
		N   Expr
		Key *SortKey
	}
	Count struct {
		At Pos
	}
)

// Rename is New = Old in project-rename.
type Rename struct {
	New, Old *Ident
}

func (o *Where) Pos() Pos         { return o.At }
func (o *Extend) Pos() Pos        { return o.At }
func (o *Project) Pos() Pos       { return o.At }
func (o *ProjectAway) Pos() Pos   { return o.At }
func (o *ProjectRename) Pos() Pos { return o.At }
func (o *Distinct) Pos() Pos      { return o.At }
func (o *Summarize) Pos() Pos     { return o.At }
func (o *Sort) Pos() Pos          { return o.At }
func (o *Take) Pos() Pos          { return o.At }
func (o *Top) Pos() Pos           { return o.At }
func (o *Count) Pos() Pos         { return o.At }

func (*Where) opNode()         {}
func (*Extend) opNode()        {}
func (*Project) opNode()       {}
func (*ProjectAway) opNode()   {}
func (*ProjectRename) opNode() {}
func (*Distinct) opNode()      {}
func (*Summarize) opNode()     {}
func (*Sort) opNode()          {}
func (*Take) opNode()          {}
func (*Top) opNode()           {}
func (*Count) opNode()         {}

// Expr is a scalar expression.
type Expr interface {
	Pos() Pos
	exprNode()
}

type (
	// Ident is a column, let name or function name. Bracketed records the
	// ['name'] spelling.
	Ident struct {
		At        Pos
		Name      string
		Bracketed bool
	}
	StringLit struct {
		At       Pos
		Value    string
		Verbatim bool
	}
	LongLit struct {
		At    Pos
		Value int64
		Text  string
	}
	RealLit struct {
		At    Pos
		Value float64
		Text  string
	}
	BoolLit struct {
		At    Pos
		Value bool
	}
	TimespanLit struct {
		At    Pos
		Value time.Duration
		Text  string
	}
	// DatetimeLit is datetime(…) with unquoted text; Null for datetime(null).
	DatetimeLit struct {
		At    Pos
		Value time.Time
		Null  bool
		Text  string
	}
	// Binary is L Op R for symbolic and word operators (==, and, has, !contains, …).
	Binary struct {
		At   Pos // the operator's position
		Op   string
		L, R Expr
	}
	// Unary is -X or +X.
	Unary struct {
		At Pos
		Op string
		X  Expr
	}
	Paren struct {
		At Pos
		X  Expr
	}
	Call struct {
		Func *Ident
		Args []Expr
	}
	// Member is X.Name (dynamic property access).
	Member struct {
		X    Expr
		Name *Ident
	}
	// Index is X[Index]: a string key or an array index.
	Index struct {
		X     Expr
		At    Pos
		Index Expr
	}
	// In is X in (list); Op is in, !in, in~ or !in~.
	In struct {
		X    Expr
		At   Pos
		Op   string
		List []Expr
	}
	// Between is X between (Lo .. Hi); Not for !between.
	Between struct {
		X      Expr
		At     Pos
		Not    bool
		Lo, Hi Expr
	}
	// Star is * (only as count() argument or distinct *).
	Star struct {
		At Pos
	}
)

func (e *Ident) Pos() Pos       { return e.At }
func (e *StringLit) Pos() Pos   { return e.At }
func (e *LongLit) Pos() Pos     { return e.At }
func (e *RealLit) Pos() Pos     { return e.At }
func (e *BoolLit) Pos() Pos     { return e.At }
func (e *TimespanLit) Pos() Pos { return e.At }
func (e *DatetimeLit) Pos() Pos { return e.At }
func (e *Binary) Pos() Pos      { return e.L.Pos() }
func (e *Unary) Pos() Pos       { return e.At }
func (e *Paren) Pos() Pos       { return e.At }
func (e *Call) Pos() Pos        { return e.Func.At }
func (e *Member) Pos() Pos      { return e.X.Pos() }
func (e *Index) Pos() Pos       { return e.X.Pos() }
func (e *In) Pos() Pos          { return e.X.Pos() }
func (e *Between) Pos() Pos     { return e.X.Pos() }
func (e *Star) Pos() Pos        { return e.At }

func (*Ident) exprNode()       {}
func (*StringLit) exprNode()   {}
func (*LongLit) exprNode()     {}
func (*RealLit) exprNode()     {}
func (*BoolLit) exprNode()     {}
func (*TimespanLit) exprNode() {}
func (*DatetimeLit) exprNode() {}
func (*Binary) exprNode()      {}
func (*Unary) exprNode()       {}
func (*Paren) exprNode()       {}
func (*Call) exprNode()        {}
func (*Member) exprNode()      {}
func (*Index) exprNode()       {}
func (*In) exprNode()          {}
func (*Between) exprNode()     {}
func (*Star) exprNode()        {}
