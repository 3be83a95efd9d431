package nft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Fake is an in-memory Dataplane for tests. It applies transactions all or
// nothing, checks references the way the kernel does (a chain or set that
// a rule or map element refers to cannot be deleted; a rule cannot refer
// to a missing chain or set), and renders its table as `nft list table`
// text.
type Fake struct {
	// Table is the table's name in the rendering.
	Table string

	mu      sync.Mutex
	exists  bool
	chains  map[string]*fakeChain
	sets    map[string]*fakeSet
	last    []Op
	commits int
	failErr error
}

type fakeChain struct {
	hook  *Hook
	rules []*Rule
}

type fakeSet struct {
	typ   SetType
	elems map[string]Element
}

// NewFake returns an empty fake named "bgpfabric".
func NewFake() *Fake { return &Fake{Table: "bgpfabric"} }

// FailNext makes the next Commit fail with err, changing nothing.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failErr = err
}

// LastOps returns the operations of the last successful commit.
func (f *Fake) LastOps() []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.last)
}

// Commits counts successful commits.
func (f *Fake) Commits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commits
}

// Commit implements Dataplane.
func (f *Fake) Commit(_ context.Context, ops []Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failErr; err != nil {
		f.failErr = nil
		return err
	}
	// Work on a copy, so that a failing op leaves everything as it was.
	w := &Fake{exists: f.exists, chains: map[string]*fakeChain{}, sets: map[string]*fakeSet{}}
	for n, c := range f.chains {
		w.chains[n] = &fakeChain{hook: c.hook, rules: slices.Clone(c.rules)}
	}
	for n, s := range f.sets {
		es := make(map[string]Element, len(s.elems))
		for k, e := range s.elems {
			es[k] = e
		}
		w.sets[n] = &fakeSet{typ: s.typ, elems: es}
	}
	for i, op := range ops {
		if err := w.apply(op); err != nil {
			return fmt.Errorf("op %d (%s): %w", i, op.Kind, err)
		}
	}
	f.exists, f.chains, f.sets = w.exists, w.chains, w.sets
	f.last = slices.Clone(ops)
	f.commits++
	return nil
}

func (w *Fake) apply(op Op) error {
	if op.Kind == OpReplaceTable {
		w.exists, w.chains, w.sets = true, map[string]*fakeChain{}, map[string]*fakeSet{}
		return nil
	}
	if !w.exists {
		return syscall.ENOENT
	}
	switch op.Kind {
	case OpAddChain:
		if _, ok := w.chains[op.Chain.Name]; !ok {
			w.chains[op.Chain.Name] = &fakeChain{hook: op.Chain.Hook}
		}
	case OpFlushChain:
		c := w.chains[op.Chain.Name]
		if c == nil {
			return fmt.Errorf("chain %s: %w", op.Chain.Name, syscall.ENOENT)
		}
		c.rules = nil
	case OpDelChain:
		if w.chains[op.Chain.Name] == nil {
			return fmt.Errorf("chain %s: %w", op.Chain.Name, syscall.ENOENT)
		}
		if by := w.referrer(op.Chain.Name); by != "" {
			return fmt.Errorf("chain %s is used by %s: %w", op.Chain.Name, by, syscall.EBUSY)
		}
		delete(w.chains, op.Chain.Name)
	case OpAddRule:
		c := w.chains[op.Chain.Name]
		if c == nil {
			return fmt.Errorf("chain %s: %w", op.Chain.Name, syscall.ENOENT)
		}
		for _, ref := range op.Rule.Refs {
			if name, isSet := strings.CutPrefix(ref, "@"); isSet && w.sets[name] == nil || !isSet && w.chains[ref] == nil {
				return fmt.Errorf("rule %q refers to missing %s: %w", op.Rule.Text, ref, syscall.ENOENT)
			}
		}
		c.rules = append(c.rules, op.Rule)
	case OpAddSet:
		if w.sets[op.Set.Name] == nil {
			w.sets[op.Set.Name] = &fakeSet{typ: op.Set.Type, elems: map[string]Element{}}
		}
		return w.addElements(op)
	case OpDelSet:
		if w.sets[op.Set.Name] == nil {
			return fmt.Errorf("set %s: %w", op.Set.Name, syscall.ENOENT)
		}
		if by := w.referrer("@" + op.Set.Name); by != "" {
			return fmt.Errorf("set %s is used by %s: %w", op.Set.Name, by, syscall.EBUSY)
		}
		delete(w.sets, op.Set.Name)
	case OpAddElements:
		return w.addElements(op)
	case OpDelElements:
		s := w.sets[op.Set.Name]
		if s == nil {
			return fmt.Errorf("set %s: %w", op.Set.Name, syscall.ENOENT)
		}
		for _, e := range op.Elements {
			if _, ok := s.elems[string(e.Key)]; !ok {
				return fmt.Errorf("set %s has no element %s: %w", op.Set.Name, elementText(op.Set.Type, e), syscall.ENOENT)
			}
			delete(s.elems, string(e.Key))
		}
	default:
		return errors.New("unknown op")
	}
	return nil
}

func (w *Fake) addElements(op Op) error {
	s := w.sets[op.Set.Name]
	if s == nil {
		return fmt.Errorf("set %s: %w", op.Set.Name, syscall.ENOENT)
	}
	if s.typ != op.Set.Type {
		return fmt.Errorf("set %s is %s, not %s: %w", op.Set.Name, s.typ, op.Set.Type, syscall.EINVAL)
	}
	for _, e := range op.Elements {
		if e.Jump != "" && w.chains[e.Jump] == nil {
			return fmt.Errorf("element %s: chain %s: %w", elementText(s.typ, e), e.Jump, syscall.ENOENT)
		}
		s.elems[string(e.Key)] = e
	}
	return nil
}

// referrer names a rule or map element that refers to ref (a chain, or
// "@set"), or returns "".
func (w *Fake) referrer(ref string) string {
	for n, c := range w.chains {
		for _, r := range c.rules {
			if slices.Contains(r.Refs, ref) {
				return "a rule of chain " + n
			}
		}
	}
	for n, s := range w.sets {
		for _, e := range s.elems {
			if e.Jump != "" && e.Jump == ref {
				return "map " + n
			}
		}
	}
	return ""
}

// Render returns the table as `nft list table` would show it (with sets,
// elements and chains sorted by name), or "" if there is no table.
func (f *Fake) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.exists {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", f.Table)
	for _, n := range sortedKeys(f.sets) {
		s := f.sets[n]
		kind := "set"
		if s.typ == MapIfname {
			kind = "map"
		}
		fmt.Fprintf(&b, "\t%s %s {\n\t\ttype %s\n", kind, n, s.typ)
		if s.typ == SetIPv4Port || s.typ == SetIPv6Port {
			b.WriteString("\t\tflags concatenation\n") // not nft's syntax, but clear
		}
		if len(s.elems) > 0 {
			es := make([]Element, 0, len(s.elems))
			for _, e := range s.elems {
				es = append(es, e)
			}
			sort.Slice(es, func(i, j int) bool { return bytes.Compare(es[i].Key, es[j].Key) < 0 })
			texts := make([]string, len(es))
			for i, e := range es {
				texts[i] = elementText(s.typ, e)
			}
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(texts, ",\n\t\t\t     "))
		}
		b.WriteString("\t}\n")
	}
	names := sortedKeys(f.chains)
	base := []string{chainForward, chainInput, chainOutput}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(base, n) })
	for _, n := range append(base, names...) {
		c := f.chains[n]
		if c == nil {
			continue
		}
		fmt.Fprintf(&b, "\n\tchain %s {\n", n)
		if c.hook != nil {
			fmt.Fprintf(&b, "\t\ttype filter hook %s priority filter; policy accept;\n", c.hook.Name)
		}
		for _, r := range c.rules {
			fmt.Fprintf(&b, "\t\t%s\n", r.Text)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}
