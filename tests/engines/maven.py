"""Java servers from Maven Central for the tests (Kafka, s3proxy): their jars, resolved once.

`resolve_jars` writes a pom listing the artifacts, runs ``mvn dependency:copy-dependencies``
into ``<folder>/lib`` and marks the folder complete, so later runs (and other sessions) reuse
the cache; a half-finished download is redone. Without Java or Maven it raises the caller's
"unavailable" error, which its tests turn into a skip that says why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def resolve_jars(folder: Path, pom: str, main_jar: str, what: str, unavailable: type[Exception]) -> Path:
    """The folder of the jars `pom` lists, downloaded into `folder` on first use.

    `main_jar` is a glob naming the jar whose presence means the download happened
    (``kafka_2.13-*.jar``); `what` names the tests in the error when a tool is missing.
    """
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise unavailable(f"{tool} not installed: {what} need Java 17+ and Maven")
    lib = folder / "lib"
    done = folder / ".complete"
    if done.exists() and any(lib.glob(main_jar)):
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(pom)
    command = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(folder / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={lib}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or not any(lib.glob(main_jar)):
        raise RuntimeError(f"mvn could not resolve {main_jar}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    done.touch()
    return lib
