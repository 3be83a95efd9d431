package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/api"
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
