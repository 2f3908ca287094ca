package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorrectionTable checks the table of corrections: every row names a
// test that exists, has a probe of the engine's own behaviour, and the
// rows pinned by TestConformance have cases there.
func TestCorrectionTable(t *testing.T) {
	t.Parallel()

	tests := testFunctions(t)
	cased := map[string]bool{}
	for _, tc := range conformanceCases {
		cased[tc.row] = true
	}

	ids := map[string]bool{}
	for _, row := range corrections {
		switch {
		case ids[row.id]:
			t.Errorf("row %q appears twice", row.id)
		case row.command == "" || row.engine == "" || row.wharf == "" || row.rfc == "":
			t.Errorf("row %q leaves a column empty", row.id)
		case !tests[row.test]:
			t.Errorf("row %q names %s, which is not a test of this package", row.id, row.test)
		case row.test == "TestConformance" && !cased[row.id]:
			t.Errorf("row %q is pinned by TestConformance, which has no case for it", row.id)
		}

		if _, ok := engineProbes[row.id]; !ok {
			t.Errorf("row %q has no probe of the engine's behaviour (engineProbes)", row.id)
		}

		ids[row.id] = true
	}

	for _, tc := range conformanceCases {
		if tc.row != "" && !ids[tc.row] {
			t.Errorf("conformance case %q names row %q, which is not in corrections.go", tc.name, tc.row)
		}
	}
}

// testFunctions returns the names of this package's Test functions.
func testFunctions(t *testing.T) map[string]bool {
	t.Helper()

	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}

	names := map[string]bool{}
	fset := token.NewFileSet()

	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}

		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				names[fn.Name.Name] = true
			}
		}
	}

	return names
}
