"""Write a node's cassandra.yaml and logback files: a small, fast-starting test node."""

from __future__ import annotations

import yaml

from astrachaos.local.layout import NodeLayout
from astrachaos.local.spec import CQL_PORT, STORAGE_PORT, ClusterSpec

WRITE_REQUEST_TIMEOUT = "2000ms"

_LOGBACK = """\
<configuration scan="false">
  <!-- INFO to logs/system.log only: without this file Cassandra logs DEBUG to the console. -->
  <appender name="SYSTEMLOG" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{log}</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>{log}.%i.zip</fileNamePattern>
      <minIndex>1</minIndex>
      <maxIndex>3</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>50MB</maxFileSize>
    </triggeringPolicy>
    <encoder>
      <pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="SYSTEMLOG"/>
  </root>
</configuration>
"""

_TOOLS_LOGBACK = """\
<configuration scan="false">
  <!-- nodetool: warnings only, to stderr. -->
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
"""


def cassandra_yaml(spec: ClusterSpec, index: int, layout: NodeLayout) -> str:
    """The cassandra.yaml of node `index` (0-based) of a cluster."""
    address = spec.addresses[index]
    authenticator = "PasswordAuthenticator" if spec.auth else "AllowAllAuthenticator"
    settings = {
        "cluster_name": f"astrachaos-{spec.name}",
        "num_tokens": 1,
        "initial_token": str(spec.tokens[index]),
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        "endpoint_snitch": "SimpleSnitch",
        "seed_provider": [
            {
                "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                "parameters": [{"seeds": ",".join(spec.addresses)}],
            }
        ],
        "listen_address": address,
        "rpc_address": address,
        "storage_port": STORAGE_PORT,
        "native_transport_port": CQL_PORT,
        "start_native_transport": True,
        "auto_bootstrap": False,
        "data_file_directories": [str(layout.data)],
        "commitlog_directory": str(layout.commitlog),
        "hints_directory": str(layout.hints),
        "saved_caches_directory": str(layout.saved_caches),
        "cdc_raw_directory": str(layout.cdc_raw),
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        "concurrent_reads": 4,
        "concurrent_writes": 4,
        "concurrent_counter_writes": 4,
        "concurrent_compactors": 1,
        "memtable_allocation_type": "heap_buffers",
        "auto_snapshot": False,
        "write_request_timeout": WRITE_REQUEST_TIMEOUT,
        "authenticator": authenticator,
        "authorizer": "AllowAllAuthorizer",
        "role_manager": "CassandraRoleManager",
        "disk_failure_policy": "stop",
        "commit_failure_policy": "stop",
    }
    header = f"# Written by astrachaos for cluster {spec.name!r}, node {index + 1}.\n"
    return header + yaml.safe_dump(settings, sort_keys=False)


def logback_xml(layout: NodeLayout) -> str:
    """The daemon's logback configuration: INFO to logs/system.log, nothing on the console."""
    return _LOGBACK.format(log=layout.system_log)


def write_node_config(spec: ClusterSpec, index: int, layout: NodeLayout) -> None:
    """Create the node's directories and write its configuration files."""
    layout.create()
    layout.cassandra_yaml.write_text(cassandra_yaml(spec, index, layout))
    layout.logback_xml.write_text(logback_xml(layout))
    layout.tools_logback_xml.write_text(_TOOLS_LOGBACK)
