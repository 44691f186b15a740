package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/berth-dev/berth/runtime"
)

var stackSeq atomic.Int64

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"berth": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script. Scripts that need a
// runtime use the [runtime] condition: true when BERTH_ADDRESS answers.
func TestScripts(t *testing.T) {
	// Under make test, a script that needs the runtime must not pass by
	// skipping: a dead socket fails the package.
	if os.Getenv("BERTH_E2E_REQUIRED") == "1" && !runtimeAvailable() {
		t.Fatal("BERTH_E2E_REQUIRED=1, but no runtime answers at BERTH_ADDRESS")
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("BERTH_ADDRESS", os.Getenv("BERTH_ADDRESS"))
			env.Setenv("BERTH_LOCK_DIR", env.WorkDir+"/locks")
			env.Setenv("BERTH_STATE_DIR", env.WorkDir+"/state")
			env.Setenv("NO_COLOR", "1")
			// A stack of its own per script run, so runs never share pods.
			env.Setenv("STACK", fmt.Sprintf("ts-%d-%d", os.Getpid(), stackSeq.Add(1)))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond != "runtime" {
				return false, nil
			}
			return runtimeAvailable(), nil
		},
	})
}

func runtimeAvailable() bool {
	addr := os.Getenv("BERTH_ADDRESS")
	if addr == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rt, err := runtime.Dial(ctx, addr)
	if err != nil {
		return false
	}
	rt.Close()
	return true
}
