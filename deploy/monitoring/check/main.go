// Command check validates Recobro's Prometheus rule files the way Prometheus loads them
// (rulefmt: the structure, every alert's fields and its PromQL), and every PromQL expression of
// the Grafana dashboards ("expr" of each target), offline.
//
// Usage: check -rules rules.yaml [-rules more.yaml] dashboard.json...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

// exprs collects every "expr" string anywhere in a dashboard's JSON.
func exprs(node any, found *[]string) {
	switch v := node.(type) {
	case map[string]any:
		for key, value := range v {
			if s, ok := value.(string); ok && key == "expr" {
				*found = append(*found, s)
				continue
			}
			exprs(value, found)
		}
	case []any:
		for _, value := range v {
			exprs(value, found)
		}
	}
}

func main() {
	var rules files
	flag.Var(&rules, "rules", "a Prometheus rule file (repeatable)")
	flag.Parse()
	promql := parser.NewParser(parser.Options{})
	failed := false
	alerts := 0
	for _, path := range rules {
		groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
		for _, err := range errs {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failed = true
		}
		if groups != nil {
			for _, group := range groups.Groups {
				alerts += len(group.Rules)
			}
		}
	}
	checked := 0
	for _, path := range flag.Args() {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", path, err)
			failed = true
			continue
		}
		var dashboard any
		if err := json.Unmarshal(raw, &dashboard); err != nil {
			fmt.Printf("FAIL %s: not JSON: %v\n", path, err)
			failed = true
			continue
		}
		var found []string
		exprs(dashboard, &found)
		if len(found) == 0 {
			fmt.Printf("FAIL %s: no PromQL expression\n", path)
			failed = true
		}
		for _, expr := range found {
			// Grafana's range variables stand for durations.
			concrete := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h").Replace(expr)
			if _, err := promql.ParseExpr(concrete); err != nil {
				fmt.Printf("FAIL %s: %q: %v\n", path, expr, err)
				failed = true
			}
			checked++
		}
	}
	fmt.Printf("rules checked: %d; dashboard expressions parsed: %d\n", alerts, checked)
	if failed {
		os.Exit(1)
	}
}
