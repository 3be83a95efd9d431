package manifest

import (
	"fmt"
	"regexp"
	"strconv"
)

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// shiftLine rewrites "line N" in a YAML error, which counts from the start
// of the document, to count from the start of the file.
func shiftLine(err error, docStart int) error {
	msg := yamlLineRE.ReplaceAllStringFunc(err.Error(), func(m string) string {
		n, _ := strconv.Atoi(m[len("line "):])
		return "line " + strconv.Itoa(n+docStart-1)
	})
	return fmt.Errorf("%s", msg)
}
