"""The GraphQL schema: Backend.AI's type and field names (``scaling_group``, ``group``, ``vfolder``) exactly
as the official client 23.09 asks for them, and the scalars' wire forms."""

from __future__ import annotations

import json
import uuid
from typing import Any

from graphql import GraphQLError, GraphQLSchema, build_schema
from graphql.language import StringValueNode

# Enough for any query the client builds (its longest, ps --detail, is about 120 tokens) and small
# enough that aliasing one list field thousands of times cannot turn one request into thousands of queries.
MAX_TOKENS = 1000
MAX_QUERY_CHARS = 20_000
MAX_PAGE_SIZE = 1000

SDL = """
scalar UUID
scalar DateTime
scalar JSONString

type Query {
  compute_session_list(limit: Int!, offset: Int!, status: String, access_key: String, group_id: UUID,
                       filter: String, order: String): ComputeSessionList
  vfolder_list(limit: Int!, offset: Int!, group_id: UUID, user_id: UUID, filter: String,
               order: String): VirtualFolderList
  keypair(access_key: String): KeyPair
  agent_list(limit: Int!, offset: Int!, status: String, scaling_group: String, filter: String,
             order: String): AgentList
  user_list(limit: Int!, offset: Int!, status: String, group_id: UUID, filter: String, order: String): UserList
  user(email: String): User
  keypair_list(limit: Int!, offset: Int!, is_active: Boolean, domain_name: String, email: String,
               filter: String, order: String): KeyPairList
  groups(domain_name: String, is_active: Boolean): [Group]
  group(id: UUID!): Group
  scaling_groups(is_active: Boolean): [ScalingGroup]
  scaling_group(name: String): ScalingGroup
  images(is_operation: Boolean): [Image]
}

type Group {
  id: UUID
  name: String
  description: String
  is_active: Boolean
  created_at: DateTime
  modified_at: DateTime
  domain_name: String
  type: String
  total_resource_slots: JSONString
  allowed_vfolder_hosts: JSONString
  integration_id: String
  resource_policy: String
}

type ScalingGroup {
  name: String
  description: String
  is_active: Boolean
  is_public: Boolean
  created_at: DateTime
  driver: String
  driver_opts: JSONString
  scheduler: String
  scheduler_opts: JSONString
  use_host_network: Boolean
  wsproxy_addr: String
  wsproxy_api_token: String
}

type KVPair { key: String value: String }

type Image {
  id: UUID
  name: String
  registry: String
  architecture: String
  tag: String
  digest: String
  size_bytes: Float
  labels: [KVPair]
  aliases: [String]
  installed: Boolean
  installed_agents: [String]
}

type UserList { items: [User]! total_count: Int! }
type KeyPairList { items: [KeyPair]! total_count: Int! }
type UserGroup { id: UUID name: String }

type User {
  uuid: UUID
  id: UUID
  username: String
  email: String
  need_password_change: Boolean
  full_name: String
  description: String
  is_active: Boolean
  status: String
  status_info: String
  created_at: DateTime
  modified_at: DateTime
  domain_name: String
  role: String
  resource_policy: String
  groups: [UserGroup]
  allowed_client_ip: [String]
  totp_activated: Boolean
  sudo_session_enabled: Boolean
  main_access_key: String
}

type AgentList { items: [Agent]! total_count: Int! }

type Agent {
  id: String
  status: String
  status_info: String
  region: String
  architecture: String
  scaling_group: String
  schedulable: Boolean
  addr: String
  version: String
  available_slots: JSONString
  occupied_slots: JSONString
  live_stat: JSONString
  first_contact: DateTime
  lost_at: DateTime
  cpu_cur_pct: Float
  mem_cur_bytes: Float
}

type ComputeSessionList { items: [ComputeSession]! total_count: Int! }
type VirtualFolderList { items: [VirtualFolder]! total_count: Int! }

type ComputeSession {
  id: UUID
  session_id: UUID
  main_kernel_id: UUID
  tag: String
  name: String
  type: String
  image: String
  architecture: String
  cluster_mode: String
  cluster_size: Int
  domain_name: String
  group_name: String
  group_id: UUID
  agent_ids: [String]
  user_email: String
  user_id: UUID
  access_key: String
  status: String
  status_info: String
  status_data: JSONString
  status_changed: DateTime
  created_at: DateTime
  terminated_at: DateTime
  starts_at: DateTime
  scheduled_at: DateTime
  startup_command: String
  result: String
  resource_opts: JSONString
  scaling_group: String
  service_ports: JSONString
  mounts: [String]
  occupying_slots: JSONString
  occupied_slots: JSONString
  abusing_reports: [JSONString]
}

type VirtualFolder {
  id: UUID
  host: String
  name: String
  user: UUID
  user_email: String
  group: UUID
  group_name: String
  creator: String
  status: String
  usage_mode: String
  permission: String
  ownership_type: String
  max_files: Int
  max_size: Float
  created_at: DateTime
  last_used: DateTime
  cur_size: Float
  cloneable: Boolean
}

type UserInfo { email: String full_name: String }

type KeyPair {
  user_id: String
  user_info: UserInfo
  access_key: String
  secret_key: String
  is_active: Boolean
  is_admin: Boolean
  created_at: DateTime
  last_used: DateTime
  resource_policy: String
  rate_limit: Int
  num_queries: Int
  ssh_public_key: String
  projects: [String]
  concurrency_used: Int
}
"""


def _parse_uuid(value: Any) -> str:
    if not isinstance(value, str):
        raise GraphQLError("A UUID must be a string.")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise GraphQLError(f"Not a UUID: {value[:64]!r}") from None


def _parse_uuid_literal(node: Any, _variables: Any = None) -> str:
    if not isinstance(node, StringValueNode):
        raise GraphQLError("A UUID must be a string.")
    return _parse_uuid(node.value)


def _output_only(_: Any) -> Any:
    raise GraphQLError("This scalar is output only.")


def _output_only_literal(_node: Any, _variables: Any = None) -> Any:
    raise GraphQLError("This scalar is output only.")


def _define_scalar(schema: GraphQLSchema, name: str, serialize: Any, parse_value: Any, parse_literal: Any) -> None:
    """Give an SDL-declared scalar its functions (graphql-core 3.2 names and 3.3's coerce_* names)."""
    scalar: Any = schema.type_map[name]  # graphql-core 3.2 and 3.3 name these attributes differently
    scalar.serialize = scalar.coerce_output_value = serialize
    scalar.parse_value = scalar.coerce_input_value = parse_value
    scalar.parse_literal = parse_literal
    if hasattr(scalar, "coerce_input_literal"):
        scalar.coerce_input_literal = None  # 3.3: fall back to parse_literal


def _build() -> GraphQLSchema:
    schema = build_schema(SDL)
    _define_scalar(schema, "UUID", str, _parse_uuid, _parse_uuid_literal)
    _define_scalar(schema, "DateTime", str, _output_only, _output_only_literal)
    # Backend.AI sends JSON objects as JSON-encoded strings; the client decodes them
    _define_scalar(schema, "JSONString", lambda v: json.dumps(v, default=str), _output_only, _output_only_literal)
    return schema


SCHEMA = _build()
