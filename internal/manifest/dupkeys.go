package manifest

import (
	"fmt"
	"strconv"

	yaml "go.yaml.in/yaml/v3"

	"github.com/bgpfabric/bgpfabric/api"
)

// maxYAMLNesting bounds how deep a YAML document may nest (as the api
// package bounds JSON).
const maxYAMLNesting = 64

// checkYAMLKeys refuses a YAML document in which a mapping has a key
// twice: the YAML to JSON conversion would keep the last value silently.
// docStart is the document's first line in the file; the error's lines
// count from the start of the file. A document that does not parse passes:
// the conversion reports it.
func checkYAMLKeys(body []byte, docStart int) error {
	var n yaml.Node
	if err := yaml.Unmarshal(body, &n); err != nil {
		return nil
	}
	return walkYAML(&n, "", docStart-1, 0)
}

func walkYAML(n *yaml.Node, path string, shift, depth int) error {
	if depth > maxYAMLNesting {
		return fmt.Errorf("line %d: %s: mappings and sequences nest deeper than %d levels", n.Line+shift, path, maxYAMLNesting)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := walkYAML(c, path, shift, depth); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				continue
			}
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if first, dup := seen[k.Value]; dup {
				return &api.DuplicateFieldError{Path: p, Line: k.Line + shift, FirstLine: first}
			}
			seen[k.Value] = k.Line + shift
			if err := walkYAML(v, p, shift, depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := walkYAML(c, path+"["+strconv.Itoa(i)+"]", shift, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
