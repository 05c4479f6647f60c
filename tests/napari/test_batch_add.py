"""Adding a batch of layers leaves the same viewer state as adding them one by one, with one selection change."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.viewer import hidden_viewer


@pytest.fixture
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


@pytest.mark.gui
def test_add_layers_selects_only_the_last(viewer):
    from napari_smil_mv.napari.batch_add import add_layers

    data = [
        (np.zeros((3, 8, 8), np.uint8), {"name": "img"}, "image"),
        (np.array([[0, 1, 1], [2, 3, 3]], float), {"name": "pts"}, "points"),
        (np.zeros((1, 2, 3)), {"name": "vec"}, "vectors"),
    ]
    changes = []
    viewer.layers.selection.events.active.connect(lambda e: changes.append(e.value))
    added = add_layers(viewer, data)
    assert [la.name for la in added] == ["img", "pts", "vec"] == [la.name for la in viewer.layers]
    assert viewer.layers.selection.active is added[-1] and set(viewer.layers.selection) == {added[-1]}
    assert changes == [added[-1]]  # one selection change, not one per layer
    assert viewer.layers._activate_on_insert  # restored
    assert viewer.dims.range[0][1] >= 2  # the dims cover the image's 3 frames


def test_gc_paused_restores_the_collector_state():
    import gc

    from napari_smil_mv.napari.batch_add import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # re-entrant: the inner block does not switch it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()  # also after an error
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector the caller switched off stays off
    finally:
        gc.enable()


@pytest.mark.gui
def test_add_layers_builds_with_the_collector_paused(viewer, monkeypatch):
    import gc

    from napari.layers import Layer

    from napari_smil_mv.napari.batch_add import add_layers

    seen = []
    create = Layer.create

    def recording_create(*args, **kwargs):
        seen.append(gc.isenabled())
        return create(*args, **kwargs)

    monkeypatch.setattr(Layer, "create", recording_create)
    add_layers(viewer, [(np.zeros((2, 4, 4), np.uint8), {"name": f"img{i}"}, "image") for i in range(3)])
    assert seen == [False, False, False]
    assert gc.isenabled()
