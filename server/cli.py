"""``parley``: serve the hub, mint a development token, or seed the demo marketplace."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from parley.server.auth import AuthError, mint_token
from parley.server.config import Config, ConfigError, load_config


def _config(path: str | None, **overrides: object) -> Config:
    if path is None and Path("config.yaml").exists():
        path = "config.yaml"
    return load_config(path, None, **{k: v for k, v in overrides.items() if v is not None})


def _serve(args: argparse.Namespace) -> int:
    config = _config(args.config, workers=args.workers)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if config.log_level.upper() != "DEBUG":
        # websockets logs every connection opened and closed at INFO: two lines per
        # member, a hundred thousand a reconnect storm, and a few percent of a
        # connect's CPU. Its warnings and errors still show.
        logging.getLogger("websockets").setLevel(logging.WARNING)
    if config.workers > 1 and not args.worker:
        return _supervise(args, config)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        pass
    from parley.server.app import run

    asyncio.run(run(config, reuse_port=config.workers > 1))
    return 0


def _reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with SO_REUSEPORT: port 0
    picks a free port once for every worker, and the supervisor holds it while
    they run. The kernel hands connections to listening sockets only."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _supervise(args: argparse.Namespace, config: Config) -> int:
    """Run ``workers`` hub processes on the same ports (SO_REUSEPORT); stop them together."""
    reserved: list[socket.socket] = []
    try:
        for host, port in ((config.ws_host, config.ws_port), (config.api_host, config.api_port)):
            reserved.append(_reserve_port(host, port))
    except OSError as exc:
        for sock in reserved:
            sock.close()
        print(f"parley: cannot bind {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    ws_port, api_port = (sock.getsockname()[1] for sock in reserved)
    env = {**os.environ, "PARLEY_WS_PORT": str(ws_port), "PARLEY_API_PORT": str(api_port)}
    argv = [sys.executable, "-m", "parley.server.cli", "serve", "--worker"]
    if args.config:
        argv += ["--config", args.config]
    children = [subprocess.Popen(argv, env=env) for _ in range(config.workers)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    for sock in reserved:
        sock.close()
    return max(codes, default=0)


def _token(args: argparse.Namespace) -> int:
    config = _config(args.config)
    print(mint_token(config, args.user, args.name, locale=args.locale, ttl=args.ttl))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from parley.server.demo import DemoError, describe, run_demo

    config = _config(args.config)
    public_url = args.public_url or config.public_url
    try:
        logins = asyncio.run(
            run_demo(
                config,
                api_url=args.api,
                ws_url=args.ws,
                public_url=public_url,
                wait=args.wait,
                ttl=args.ttl,
            )
        )
    except (DemoError, AuthError) as exc:  # AuthError: the demo mints HS256 tokens only
        print(f"parley demo: {exc}", file=sys.stderr)
        return 1
    print(describe(logins, config, public_url))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parley", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub")
    serve.add_argument("--config", help="path to config.yaml (default: ./config.yaml)")
    serve.add_argument("--workers", type=int, help="hub processes (Redis store only)")
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)
    token = sub.add_parser("token", help="mint a development token (HS256)")
    token.add_argument("--config", help="path to config.yaml (default: ./config.yaml)")
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--name", required=True, help="username")
    token.add_argument("--locale", default="en", help="locale, e.g. fr-CA")
    token.add_argument("--ttl", type=float, default=86400.0, help="seconds until it expires")
    token.set_defaults(func=_token)
    demo = sub.add_parser(
        "demo", help="seed a demo marketplace into a running hub; print one login link per member"
    )
    demo.add_argument("--config", help="path to config.yaml (default: ./config.yaml)")
    demo.add_argument("--api", help="the hub's internal API (default: from api_host, api_port)")
    demo.add_argument("--ws", help="the hub's WebSocket URL (default: from ws_host, ws_port)")
    demo.add_argument("--public-url", help="base of the printed links (default: public_url)")
    demo.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the hub")
    demo.add_argument("--ttl", type=float, default=7 * 86400.0, help="seconds the links last")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"parley: bad configuration: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
