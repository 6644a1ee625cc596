"""A real Apache Kafka broker (KRaft, one node) on loopback, for tests, benchmarks and development.

The broker's jars come from Maven (``org.apache.kafka:kafka_2.13`` with its dependencies,
resolved by ``mvn dependency:copy-dependencies`` from a generated pom) into a cache folder
outside the repo, ``~/.cache/strato/kafka-<version>`` (``STRATO_KAFKA_CACHE`` overrides): the
first start downloads, later starts reuse it. Each `start` formats a fresh KRaft log directory
in a temporary folder (``kafka.tools.StorageTool format``), launches ``kafka.Kafka`` with a
generated ``server.properties`` on a free loopback port (the controller on another), waits
until an AdminClient lists topics, and `stop` ends it by its PID.

Run by hand: ``scripts/kafka-broker`` (prints the bootstrap address, stops on Ctrl-C).
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ..maven import resolve_jars  # noqa: TID252 - relative: also imported as tests.engines.* (bench, scripts)

KAFKA_VERSION = "4.4.0"
#: JVM heap of the broker: the test machine is small and shared.
HEAP = "-Xmx512m"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>strato</groupId><artifactId>kafka-broker-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
"""

_LOG4J = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
"""


class BrokerUnavailable(RuntimeError):
    """Java or Maven is missing: the broker cannot be had on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    root = os.environ.get("STRATO_KAFKA_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "strato" / f"kafka-{version}"


def jars(version: str = KAFKA_VERSION) -> Path:
    """The folder of the broker's jars, resolved with Maven on first use (cached after)."""
    return resolve_jars(
        cache_dir(version), _POM.format(version=version), "kafka_2.13-*.jar", "the Kafka tests", BrokerUnavailable
    )


class KafkaBroker:
    """One single-node KRaft broker this process started; `stop()` ends it by PID."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="strato-kafka-"))
        self.port = free_port()
        self.controller_port = free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> Path:
        logs = self.directory / "data"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(logs),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "message.max.bytes": str(8 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "2",
            "log.flush.interval.messages": str(2**62),
            "group.consumer.heartbeat.interval.ms": "500",
            "group.consumer.min.heartbeat.interval.ms": "500",
            "group.consumer.session.timeout.ms": "6000",
            "group.consumer.min.session.timeout.ms": "6000",
        }
        path = self.directory / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, lib: Path, main: str, *args: str) -> list[str]:
        log4j = self.directory / "log4j2.properties"
        log4j.write_text(_LOG4J.format(log=self.directory / "broker.log"))
        return [
            "java",
            HEAP,
            "-Xms128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{lib}/*",
            main,
            *args,
        ]

    def start(self, timeout: float = 90.0) -> KafkaBroker:
        """Format a fresh log directory, start the broker, return once it answers."""
        lib = jars()
        self.directory.mkdir(parents=True, exist_ok=True)
        properties = self._properties()
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        formatted = subprocess.run(
            self._java(lib, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if formatted.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed: {formatted.stdout}{formatted.stderr}")
        with (self.directory / "stdout.log").open("wb") as out:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self._java(lib, "kafka.Kafka", str(properties)), stdout=out, stderr=subprocess.STDOUT
            )
        atexit.register(self.stop)
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka broker exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if admin is None:  # only once the port accepts, so librdkafka logs no refusals
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
                admin.list_topics(timeout=2)
                return
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Kafka broker on {self.bootstrap_servers} did not answer within {timeout:.0f} s")

    def log_tail(self) -> str:
        text = ""
        for name in ("stdout.log", "broker.log"):
            path = self.directory / name
            if path.exists():
                text += path.read_text(errors="replace")[-3000:]
        return text

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def main() -> None:
    broker = KafkaBroker().start()
    print(f"Kafka {KAFKA_VERSION} on {broker.bootstrap_servers} (pid {broker.process.pid if broker.process else '?'})")
    print("Ctrl-C stops it.", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        broker.stop()


if __name__ == "__main__":
    try:
        main()
    except BrokerUnavailable as exc:
        sys.exit(f"kafka-broker: {exc}")
