"""The Gradio demo of the avatar engine: `python app.py` serves it on http://127.0.0.1:7860 (docs/app.md)."""

from __future__ import annotations

import argparse
import logging
import os
import signal


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into the KeyboardInterrupt Gradio's server loop stops on (then the temp folder goes)."""
    raise KeyboardInterrupt


def main() -> None:
    """Parse the command line and serve the demo until interrupted."""
    parser = argparse.ArgumentParser(description="Serve the expressive avatar demo (Gradio) on localhost.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--concurrency", type=int, default=1, help="renders at the same time (default 1)")
    parser.add_argument("--output-dir", default=os.environ.get("AVATAR_APP_DIR"),
                        help="folder for everything the app writes (default: a fresh temporary folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes, one line per request
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` / `docker stop` shut down as cleanly as Ctrl-C

    import tempfile
    from contextlib import ExitStack
    from pathlib import Path

    from avatar.app_ui import AppConfig, launch

    with ExitStack() as stack:
        if args.output_dir:
            root = Path(args.output_dir).resolve()
        else:  # a temporary folder of our own, removed when the server stops
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="avatar-app-")))
        launch(AppConfig(root=root, concurrency=max(1, args.concurrency)), host=args.host, port=args.port,
               block=True)


if __name__ == "__main__":
    main()
