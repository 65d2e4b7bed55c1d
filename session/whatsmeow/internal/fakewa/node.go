package fakewa

import (
	"bytes"
	"maps"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// XML returns n as whatsmeow prints it (Node.XMLString): attributes sorted by
// name, children inline, so two nodes can be compared verbatim. Unlike
// XMLString it takes a value, so it also works on function results such as
// XML(s.WaitNode(…)).
func XML(n waBinary.Node) string {
	return n.String()
}

// cloneNode returns a deep copy of n, so that callers may keep or modify the
// nodes they are given without racing with the server.
func cloneNode(n waBinary.Node) waBinary.Node {
	n.Attrs = maps.Clone(n.Attrs)
	switch content := n.Content.(type) {
	case []waBinary.Node:
		children := make([]waBinary.Node, len(content))
		for i, child := range content {
			children[i] = cloneNode(child)
		}
		n.Content = children
	case []byte:
		n.Content = bytes.Clone(content)
	}
	return n
}
