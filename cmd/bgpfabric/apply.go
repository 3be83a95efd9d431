//go:build !nodeonly

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/manifest"
)

// readManifests reads and validates every document of the files (or "-"
// for stdin). It returns all documents or an error for each bad one.
func init() { addCommand(newApplyCmd) }

func readManifests(g *globalOptions, files []string) ([]manifest.Document, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("-f: give a file, or - for stdin")
	}
	var all []manifest.Document
	var errs []error
	for _, f := range files {
		data, name, err := manifest.ReadFile(f, g.stdin)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		docs, err := manifest.Parse(name, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, docs...)
	}
	if len(errs) > 0 {
		return nil, joinLines(errs)
	}
	return all, nil
}

func newApplyCmd(g *globalOptions) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update resources from YAML or JSON documents",
		Long: `Apply creates or updates every resource in the files given with -f
(multi-document YAML, a JSON object or a JSON array; "-" reads stdin).
Every document is validated before any is written, and all are written in one
datastore transaction: a file with one bad document changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			docs, err := readManifests(g, files)
			if err != nil {
				return err
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := checkFilterRefs(cmd.Context(), c, docs); err != nil {
				return err
			}
			if err := checkFamilies(cmd.Context(), c, docs); err != nil {
				return err
			}
			rs := make([]api.Resource, len(docs))
			for i, d := range docs {
				rs[i] = d.Resource
			}
			stored, err := c.ApplyAll(cmd.Context(), rs)
			if err != nil {
				return err
			}
			for _, r := range stored {
				fmt.Fprintf(g.stdout, "%s applied\n", displayName(r))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file to apply (repeatable; - for stdin)")
	return cmd
}

// checkFilterRefs refuses BGPPeers that name a BGPFilter that is neither
// among the documents nor in the datastore, naming the field. (Deleting a
// filter a peer uses stays allowed: the peer falls back to the default
// policy, docs/policy.md.)
func checkFilterRefs(ctx context.Context, c *datastore.Client, docs []manifest.Document) error {
	have := map[string]bool{}
	for _, d := range docs {
		if f, ok := d.Resource.(*api.BGPFilter); ok {
			have[f.Name] = true
		}
	}
	var errs []error
	for _, d := range docs {
		p, ok := d.Resource.(*api.BGPPeer)
		if !ok {
			continue
		}
		for i, name := range p.Spec.Filters {
			if have[name] {
				continue
			}
			_, err := c.Get(ctx, api.KindBGPFilter, "", name)
			switch {
			case err == nil:
				have[name] = true
			case errors.Is(err, datastore.ErrNotFound):
				errs = append(errs, &manifest.Error{Source: d.Source,
					Err: fmt.Errorf("spec.filters[%d]: BGPFilter %q does not exist (apply it first, or in the same file)", i, name)})
			default:
				return fmt.Errorf("looking up BGPFilter %q: %w", name, err)
			}
		}
	}
	if len(errs) > 0 {
		return joinLines(errs)
	}
	return nil
}

// displayName is how a resource is named in command output: kind/name or
// kind/namespace/name.
func displayName(r api.Resource) string {
	m := r.GetObjectMeta()
	kind := r.GetTypeMeta().Kind
	if ki, err := api.LookupKind(kind); err == nil {
		kind = ki.Plural
	}
	if m.Namespace != "" {
		return kind + "/" + m.Namespace + "/" + m.Name
	}
	return kind + "/" + m.Name
}

type lineErrors []error

func (l lineErrors) Error() string {
	s := ""
	for i, e := range l {
		if i > 0 {
			s += "\n"
		}
		s += e.Error()
	}
	return s
}

func (l lineErrors) Unwrap() []error { return l }

func joinLines(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return lineErrors(errs)
}
