package apple

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/fakes/container"
)

// `mage dev` brings a network's bridge up with a container created with
// AutoRemove before it starts its own, and deletes one left behind with
// Remove. The fake follows container 1.2.2: `run --rm` deletes the container
// when it stops, and ifconfig lists a bridge while a container runs on the
// network.
func TestAutoRemoveBringsTheBridgeUpAndDeletesTheContainerWhenItStops(t *testing.T) {
	e, calls := mac(t, "1.2.2", container.EnvImages+"=claudepine:latest")
	ctx := context.Background()
	if err := e.CreateNetwork(ctx, "claude", netip.MustParsePrefix("192.168.218.0/24")); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Network(ctx, "claude"); err != nil || n.Interface != "" {
		t.Fatalf("before any container: Network = %+v, %v; want no bridge yet", n, err)
	}
	if err := e.Create(ctx, engine.RunSpec{Name: "claude-alpine-gate", Image: "claudepine:latest", Network: "claude", AutoRemove: true}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(calls(), func(c string) bool {
		return strings.HasPrefix(c, "container run -d --name claude-alpine-gate --rm --network claude ")
	}) {
		t.Errorf("no `container run --rm`: %q", calls())
	}
	if n, err := e.Network(ctx, "claude"); err != nil || !strings.HasPrefix(n.Interface, "bridge") {
		t.Errorf("with the container running: Network = %+v, %v; want its bridge", n, err)
	}
	if err := e.Stop(ctx, "claude-alpine-gate"); err != nil {
		t.Fatal(err)
	}
	if st, err := e.State(ctx, "claude-alpine-gate"); err != nil || st != engine.Absent {
		t.Errorf("after Stop: State = %v, %v; want absent", st, err)
	}
}

func TestRemoveDeletesAStoppedContainerAndSaysWhenThereIsNone(t *testing.T) {
	e, calls := mac(t, "1.2.2", container.EnvImages+"=claudepine:latest")
	ctx := context.Background()
	if err := e.Create(ctx, engine.RunSpec{Name: "left", Image: "claudepine:latest"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(ctx, "left"); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, "left"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(calls(), "container delete left") {
		t.Errorf("no `container delete left`: %q", calls())
	}
	if st, err := e.State(ctx, "left"); err != nil || st != engine.Absent {
		t.Errorf("after Remove: State = %v, %v; want absent", st, err)
	}
	if err := e.Remove(ctx, "left"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Remove of a missing container: %v; want engine.ErrNotFound", err)
	}
	if err := e.Remove(ctx, "-f"); err == nil || slices.Contains(calls(), "container delete -f") {
		t.Errorf("Remove(-f) = %v, calls %q; want a refusal before running anything", err, calls())
	}
}
