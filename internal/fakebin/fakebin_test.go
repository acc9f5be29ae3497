package fakebin_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

func TestMain(m *testing.M) {
	fakebin.Main(m, map[string]func() int{
		"greet": func() int {
			fakebin.Record()
			fmt.Println("hello", os.Args[1])
			return 7
		},
	})
}

func TestAFakeRunsInPlaceOfTheProgramAndIsLogged(t *testing.T) {
	calls := fakebin.NewLog(t)
	res, err := proc.Exec{}.Run(context.Background(), proc.Cmd{Name: "greet", Args: []string{"world"}})
	if proc.ExitCode(err) != 7 {
		t.Fatalf("err = %v, want exit status 7", err)
	}
	if string(res.Stdout) != "hello world\n" {
		t.Errorf("stdout = %q", res.Stdout)
	}
	if got := calls(); len(got) != 1 || got[0] != "greet world" {
		t.Errorf("calls = %q", got)
	}
}
