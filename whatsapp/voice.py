"""Voice notes as WhatsApp plays them: Ogg/Opus, one channel.

Browsers record other containers (Chromium and Firefox: WebM/Opus; Safari: MP4/AAC),
so the worker converts a voice note with ffmpeg before it hands it to the gateway. The
converted file is kept beside the original (``<name>.voice.ogg``): a retried send does
not convert again, and the page keeps playing the file the agent recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
from pathlib import Path

from whatsapp.gateway import base

logger = logging.getLogger(__name__)

VOICE_MIME = "audio/ogg; codecs=opus"
CONVERT_SECONDS = 120.0


def needs_conversion(mimetype: str) -> bool:
    return (mimetype or "").split(";", 1)[0].strip().lower() != "audio/ogg"


def converted_path(path: str) -> Path:
    source = Path(path)
    return source.with_name(source.stem + ".voice.ogg")


def ffmpeg_args(source: str, dest: str) -> list[str]:
    return [
        "ffmpeg",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-i",
        source,
        "-vn",
        "-map_metadata",
        "-1",
        "-ac",
        "1",
        "-ar",
        "48000",
        "-c:a",
        "libopus",
        "-b:a",
        "32k",
        "-application",
        "voip",
        "-f",
        "ogg",
        dest,
    ]


async def prepared(cmd: base.SendMedia) -> base.SendMedia:
    """``cmd`` as WhatsApp takes a voice note: the same command for Ogg already, else
    one that points at the converted file. A conversion that fails (no ffmpeg, not
    audio) raises a non-transient GatewayError: trying again would not help."""
    if cmd.kind != base.MessageKind.VOICE:
        return cmd
    if not needs_conversion(cmd.mimetype):
        return dataclasses.replace(cmd, mimetype=VOICE_MIME)
    dest = converted_path(cmd.path)
    if not dest.exists():
        if shutil.which("ffmpeg") is None:
            raise base.GatewayError("ffmpeg is not installed: the voice note cannot be converted")
        partial = dest.with_name(dest.name + ".part")
        proc = await asyncio.create_subprocess_exec(
            *ffmpeg_args(cmd.path, str(partial)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _out, err = await asyncio.wait_for(proc.communicate(), CONVERT_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            partial.unlink(missing_ok=True)
            raise base.GatewayError("converting the voice note took too long") from None
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            logger.warning("voice note conversion failed: %s", detail[0][:200])
            raise base.GatewayError("the voice note could not be converted to Ogg/Opus")
        os.replace(partial, dest)
    return dataclasses.replace(
        cmd, path=str(dest), mimetype=VOICE_MIME, filename=dest.name if cmd.filename else ""
    )
