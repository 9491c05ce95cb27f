//go:build !unix

package main

import "os"

// windowCols is the terminal f's width in columns, 0 if unknown.
func windowCols(f *os.File) int { return 0 }
