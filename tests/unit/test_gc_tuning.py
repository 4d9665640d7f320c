"""engine.gc_tuning: what serve, ingest, replay and check ask of the collector."""

from __future__ import annotations

import gc

from engine.gc_tuning import GEN0_THRESHOLD, restore_gc, tune_gc


def test_tune_gc_raises_thresholds_and_restores_them(monkeypatch):
    monkeypatch.setenv("CHANNELSYNC_GC_TUNING", "1")
    before = gc.get_threshold()
    previous = tune_gc(freeze=False)
    try:
        assert previous == before
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert tune_gc(freeze=False) == gc.get_threshold()  # a second call changes nothing
    finally:
        restore_gc(previous)
    assert gc.get_threshold() == before


def test_tune_gc_is_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("CHANNELSYNC_GC_TUNING", "0")
    before = gc.get_threshold()
    tune_gc()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
