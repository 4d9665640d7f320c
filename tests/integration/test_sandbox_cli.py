"""`channelsync sandbox` runs both platforms standalone for integrators."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from adapters.sandbox.load import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_sandbox_serves_tiktok_and_shoplazza_until_interrupted():
    tiktok_port, shoplazza_port = free_port(), free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "sandbox",
            "--tiktok-port",
            str(tiktok_port),
            "--shoplazza-port",
            str(shoplazza_port),
            "--webhook-url",
            "http://127.0.0.1:9",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                token = httpx.get(
                    f"http://127.0.0.1:{tiktok_port}/api/v2/token/get",
                    params={"app_key": "sandbox-app-key", "app_secret": "wrong"},
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert token.json()["code"] == 36009004, "TikTok's error for bad credentials"
        code = httpx.get(
            f"http://127.0.0.1:{tiktok_port}/oauth/authorize",
            params={"app_key": "sandbox-app-key", "state": "shop:x"},
        ).json()["code"]
        granted = httpx.get(
            f"http://127.0.0.1:{tiktok_port}/api/v2/token/get",
            params={
                "app_key": "sandbox-app-key",
                "app_secret": "sandbox-app-secret",
                "auth_code": code,
                "grant_type": "authorized_code",
            },
        ).json()
        assert granted["code"] == 0 and granted["data"]["seller_base_region"] == "US"
        carriers = httpx.get(
            f"http://127.0.0.1:{shoplazza_port}/openapi/2026-01/tracking/carriers",
            headers={"Access-Token": "sandbox-access-token"},
        ).json()
        assert {c["code"] for c in carriers["tracking_carriers"]} >= {"usps", "ups"}
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=20)
    assert child.returncode == 0
