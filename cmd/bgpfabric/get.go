//go:build !nodeonly

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/bgpfabric/bgpfabric/api"
)

func init() { addCommand(newGetCmd) }

func newGetCmd(g *globalOptions) *cobra.Command {
	var namespace, output string
	var allNamespaces bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show resources of a kind, or one resource",
		Long: `Get prints resources as a table (the default), YAML or JSON.
KIND is a kind, its plural or a short name: nodes, bgppeers, ippools, wep, gnp...
Output in yaml or json can be given back to apply.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ki, err := api.LookupKind(args[0])
			if err != nil {
				return fmt.Errorf("%w (known kinds: %s)", err, knownKinds())
			}
			if output != "table" && output != "yaml" && output != "json" {
				return fmt.Errorf("-o %q: want table, yaml or json", output)
			}
			ns := namespace
			switch {
			case !ki.Namespaced && ns != "":
				return fmt.Errorf("%s is not namespaced: drop -n", ki.Kind)
			case ki.Namespaced && allNamespaces:
				ns = ""
			case ki.Namespaced && ns == "":
				ns = "default"
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var items []api.Resource
			if len(args) == 2 {
				r, err := c.Get(cmd.Context(), ki.Kind, ns, args[1])
				if err != nil {
					return err
				}
				items = []api.Resource{r}
			} else {
				items, _, err = c.List(cmd.Context(), ki.Kind, ns)
				if err != nil {
					return err
				}
			}
			sort.Slice(items, func(i, j int) bool {
				a, b := items[i].GetObjectMeta(), items[j].GetObjectMeta()
				if a.Namespace != b.Namespace {
					return a.Namespace < b.Namespace
				}
				return a.Name < b.Name
			})
			return printResources(g.stdout, ki, items, output, len(args) == 2)
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of a namespaced kind (default \"default\")")
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list a namespaced kind across all namespaces")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, yaml or json")
	return cmd
}

func knownKinds() string {
	s := ""
	for i, k := range api.Kinds() {
		if i > 0 {
			s += ", "
		}
		s += k.Plural
	}
	return s
}

// printResources writes items in the format asked for. single is true when
// one resource was asked for by name: JSON then prints an object, not an
// array.
func printResources(w io.Writer, ki *api.KindInfo, items []api.Resource, format string, single bool) error {
	switch format {
	case "json":
		var v any = items
		if single {
			v = items[0]
		}
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	case "yaml":
		for i, r := range items {
			data, err := yaml.Marshal(r)
			if err != nil {
				return err
			}
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			if _, err := w.Write(data); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	head, cols := columnsFor(ki)
	if ki.Namespaced {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprint(tw, "NAME")
	for _, h := range head {
		fmt.Fprint(tw, "\t"+h)
	}
	fmt.Fprintln(tw)
	for _, r := range items {
		m := r.GetObjectMeta()
		if ki.Namespaced {
			fmt.Fprint(tw, m.Namespace+"\t")
		}
		fmt.Fprint(tw, m.Name)
		for _, v := range cols(r) {
			if v == "" {
				v = "-"
			}
			fmt.Fprint(tw, "\t"+v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
