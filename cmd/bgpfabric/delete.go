//go:build !nodeonly

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

func init() { addCommand(newDeleteCmd) }

func newDeleteCmd(g *globalOptions) *cobra.Command {
	var namespace string
	var files []string
	var ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME | -f FILE)",
		Short: "Delete a resource by kind and name, or every resource in a file",
		RunE: func(cmd *cobra.Command, args []string) error {
			type target struct{ kind, ns, name string }
			var targets []target
			switch {
			case len(files) > 0 && len(args) == 0:
				docs, err := readManifests(g, files)
				if err != nil {
					return err
				}
				for _, d := range docs {
					m := d.Resource.GetObjectMeta()
					targets = append(targets, target{d.Resource.GetTypeMeta().Kind, m.Namespace, m.Name})
				}
			case len(files) == 0 && len(args) == 2:
				ki, err := api.LookupKind(args[0])
				if err != nil {
					return err
				}
				ns := namespace
				if ki.Namespaced && ns == "" {
					ns = "default"
				}
				if !ki.Namespaced && ns != "" {
					return fmt.Errorf("%s is not namespaced: drop -n", ki.Kind)
				}
				targets = append(targets, target{ki.Kind, ns, args[1]})
			default:
				return fmt.Errorf("give KIND NAME, or -f FILE")
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, t := range targets {
				err := c.Delete(cmd.Context(), t.kind, t.ns, t.name, "")
				if ignoreNotFound && errors.Is(err, datastore.ErrNotFound) {
					continue
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				r, _ := api.New(t.kind)
				m := r.GetObjectMeta()
				m.Namespace, m.Name = t.ns, t.name
				fmt.Fprintf(g.stdout, "%s deleted\n", displayName(r))
			}
			if len(errs) > 0 {
				return joinLines(errs)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of a namespaced kind (default \"default\")")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat a resource that does not exist as deleted")
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete every resource named in this file")
	return cmd
}
