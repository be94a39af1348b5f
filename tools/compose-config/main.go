// compose-config loads a Compose project with compose-spec/compose-go, the library Docker Compose itself
// uses, and prints the resolved project as JSON: the same checks (schema, interpolation, merging of
// override files, profiles) as `docker compose config`, without a Docker engine.
//
//	compose-config [--profile NAME ...] -f docker-compose.yml [-f override.yml ...]
//
// Exit code 0 with the project on stdout, or 1 with the loader's error on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var files, profiles list
	flag.Var(&files, "f", "compose file (repeatable, later files override earlier ones)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable; \"*\" enables all)")
	name := flag.String("project-name", "edge-bridge", "project name")
	flag.Parse()
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "compose-config: name at least one file with -f")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(files, cli.WithOsEnv, cli.WithName(*name), cli.WithProfiles(profiles))
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-config:", err)
	os.Exit(1)
}
