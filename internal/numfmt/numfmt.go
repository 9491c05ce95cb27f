// Package numfmt is the one short number format of labels, tables and
// figure legends (a setting's value, "lr=3e-3"), shared by sweeps' trial
// labels and configs' setting pairs so a trial reads the same everywhere.
package numfmt

import (
	"math"
	"strconv"
	"strings"
)

// ShortFloat is 'g' format with 4 significant digits and exponents written
// without padding or plus sign (1e-4, 2.5e+06 as 2.5e6), scientific below
// 0.01 and from 1e5.
func ShortFloat(f float64) string {
	a := math.Abs(f)
	if a == 0 || (a >= 1e-2 && a < 1e5) {
		return strconv.FormatFloat(f, 'g', 4, 64)
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'e', 3, 64), "e")
	if strings.Contains(mant, ".") {
		mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
	}
	sign := ""
	if exp[0] == '-' {
		sign = "-"
	}
	return mant + "e" + sign + strings.TrimLeft(exp[1:], "0")
}
