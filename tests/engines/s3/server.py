"""A real S3-compatible server (s3proxy) on loopback, for tests and benchmarks.

s3proxy (``org.gaul:s3proxy``) implements the S3 API over jclouds blob stores. Its jars come
from Maven (``mvn dependency:copy-dependencies`` of a generated pom) into a cache folder outside
the repo, ``~/.cache/strato/s3proxy-<version>`` (``STRATO_S3PROXY_CACHE`` overrides): the first
start downloads (about 100 MB, half a minute), later starts reuse it. Each `start` runs
``org.gaul.s3proxy.Main`` on a free loopback port with the in-memory ``transient-nio2`` store,
waits until it answers, creates the bucket, and `stop` ends it by its PID.

Why 4.0.0 and not 2.6.0: Delta commits on S3 are safe only where the server honours
``If-None-Match: *`` on PUT (delta-rs writes each commit file "only if absent"). s3proxy 2.6.0
checks that header on GET/HEAD only; measured here, 8 concurrent appends through it left a
table at version 2 with 3 of 9 rows, the other commits silently overwritten. 4.0.0 with
``transient-nio2`` (or ``filesystem-nio2``) evaluates it as it writes: the same test keeps all 9.
Its pom needs jackson-annotations 2.22 pinned (Maven's nearest-wins picks an older one that
Jackson 3 cannot start with).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..maven import resolve_jars  # noqa: TID252 - relative: also imported as tests.engines.* (bench, scripts)

S3PROXY_VERSION = "4.0.0"
ACCESS_KEY = "strato-test"
SECRET_KEY = "strato-test-secret"
REGION = "us-east-1"
#: JVM heap of the server: the test machine is small and shared.
HEAP = "-Xmx512m"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>strato</groupId><artifactId>s3proxy-jars</artifactId><version>1</version>
  <dependencyManagement><dependencies>
    <dependency><groupId>com.fasterxml.jackson.core</groupId><artifactId>jackson-annotations</artifactId><version>2.22</version></dependency>
  </dependencies></dependencyManagement>
  <dependencies>
    <dependency><groupId>org.gaul</groupId><artifactId>s3proxy</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""

_LOGBACK = """<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%d %level %logger{{20}} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="FILE"/></root>
</configuration>
"""


class S3Unavailable(RuntimeError):
    """Java or Maven is missing: the server cannot be had on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cache_dir(version: str = S3PROXY_VERSION) -> Path:
    root = os.environ.get("STRATO_S3PROXY_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "strato" / f"s3proxy-{version}"


def jars(version: str = S3PROXY_VERSION) -> Path:
    """The folder of s3proxy's jars, resolved with Maven on first use (cached after)."""
    return resolve_jars(
        cache_dir(version), _POM.format(version=version), "s3proxy-*.jar", "the object-storage tests", S3Unavailable
    )


class S3Server:
    """One s3proxy this process started; `stop()` ends it by PID."""

    def __init__(self, bucket: str = "strato", directory: Path | None = None) -> None:
        self.bucket = bucket
        self.directory = directory or Path(tempfile.mkdtemp(prefix="strato-s3-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_options(self) -> dict[str, str]:
        """delta-rs's options for this server (what strato.yaml's ``offline.storage_options`` holds)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    def start(self, timeout: float = 60.0) -> S3Server:
        lib = jars()
        log = self.directory / "s3proxy.log"
        (self.directory / "logback.xml").write_text(_LOGBACK.format(log=log))
        properties = self.directory / "s3proxy.conf"
        properties.write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint={self.endpoint}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={ACCESS_KEY}",
                    f"s3proxy.credential={SECRET_KEY}",
                    "jclouds.provider=transient-nio2",
                    "jclouds.identity=unused",
                    "jclouds.credential=unused",
                ]
            )
            + "\n"
        )
        command = [
            "java",
            HEAP,
            f"-Dlogback.configurationFile={self.directory / 'logback.xml'}",
            "-cp",
            f"{lib}/*",
            "org.gaul.s3proxy.Main",
            "--properties",
            str(properties),
        ]
        with open(self.directory / "stdout.log", "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"s3proxy exited with {self.process.returncode}: {self._tail(log)}")
            try:
                self._make_bucket()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"s3proxy did not answer on {self.endpoint} in {timeout} s") from None
                time.sleep(0.2)

    def _make_bucket(self) -> None:
        import pyarrow.fs as pafs

        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        fs = pafs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{self.port}",
            scheme="http",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            allow_bucket_creation=True,
        )
        fs.create_dir(self.bucket)

    @staticmethod
    def _tail(path: Path) -> str:
        try:
            return path.read_text()[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)
