"""model serving: services (endpoints), their replicas (routes), tokens, autoscaling rules and
replica errors; sessions.model_service (what a replica's runner starts)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 01:41:38
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('endpoints',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('status_info', sa.String(length=512), nullable=True),
    sa.Column('owner_user_id', sa.Uuid(), nullable=False),
    sa.Column('owner_access_key', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('project_id', sa.Uuid(), nullable=False),
    sa.Column('domain_name', sa.String(length=64), nullable=False),
    sa.Column('resource_group', sa.String(length=64), nullable=False),
    sa.Column('model_folder_id', sa.Uuid(), nullable=False),
    sa.Column('model_mount_destination', sa.String(length=256), nullable=False),
    sa.Column('model_definition_path', sa.String(length=512), nullable=True),
    sa.Column('extra_mounts', sa.JSON(), nullable=False),
    sa.Column('runtime_variant', sa.String(length=32), nullable=False),
    sa.Column('image', sa.String(length=512), nullable=False),
    sa.Column('architecture', sa.String(length=32), nullable=False),
    sa.Column('resource_slots', sa.JSON(), nullable=False),
    sa.Column('resource_opts', sa.JSON(), nullable=False),
    sa.Column('cluster_mode', sa.String(length=16), nullable=False),
    sa.Column('cluster_size', sa.Integer(), nullable=False),
    sa.Column('environ', sa.JSON(), nullable=False),
    sa.Column('startup_command', sa.Text(), nullable=True),
    sa.Column('bootstrap_script', sa.Text(), nullable=True),
    sa.Column('tag', sa.String(length=256), nullable=True),
    sa.Column('callback_url', sa.String(length=1024), nullable=True),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('desired_replicas', sa.Integer(), nullable=False),
    sa.Column('open_to_public', sa.Boolean(), nullable=False),
    sa.Column('url', sa.String(length=1024), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.Column('next_retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('woken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('live_stat', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('modified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('destroyed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.uuid'], name=op.f('fk_endpoints_created_by_users')),
    sa.ForeignKeyConstraint(['domain_name'], ['domains.name'], name=op.f('fk_endpoints_domain_name_domains')),
    sa.ForeignKeyConstraint(['owner_access_key'], ['keypairs.access_key'], name=op.f('fk_endpoints_owner_access_key_keypairs')),
    sa.ForeignKeyConstraint(['owner_user_id'], ['users.uuid'], name=op.f('fk_endpoints_owner_user_id_users')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_endpoints_project_id_projects')),
    sa.ForeignKeyConstraint(['resource_group'], ['resource_groups.name'], name=op.f('fk_endpoints_resource_group_resource_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoints'))
    )
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoints_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoints_model_folder_id'), ['model_folder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoints_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoints_owner_access_key'), ['owner_access_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoints_owner_user_id'), ['owner_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoints_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_endpoints_status'), ['status'], unique=False)

    op.create_table('endpoint_auto_scaling_rules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('metric_source', sa.String(length=32), nullable=False),
    sa.Column('metric_name', sa.String(length=256), nullable=False),
    sa.Column('comparator', sa.String(length=4), nullable=False),
    sa.Column('threshold', sa.String(length=64), nullable=False),
    sa.Column('step_size', sa.Integer(), nullable=False),
    sa.Column('cooldown_seconds', sa.Integer(), nullable=False),
    sa.Column('min_replicas', sa.Integer(), nullable=True),
    sa.Column('max_replicas', sa.Integer(), nullable=True),
    sa.Column('last_triggered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_endpoint_auto_scaling_rules_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_auto_scaling_rules'))
    )
    with op.batch_alter_table('endpoint_auto_scaling_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_auto_scaling_rules_endpoint_id'), ['endpoint_id'], unique=False)

    op.create_table('endpoint_errors',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('route_id', sa.Uuid(), nullable=True),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('log_tail', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_endpoint_errors_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_errors'))
    )
    with op.batch_alter_table('endpoint_errors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_errors_endpoint_id'), ['endpoint_id'], unique=False)

    op.create_table('endpoint_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.uuid'], name=op.f('fk_endpoint_tokens_created_by_users')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_endpoint_tokens_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoint_tokens'))
    )
    with op.batch_alter_table('endpoint_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_endpoint_tokens_endpoint_id'), ['endpoint_id'], unique=False)

    op.create_table('routes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('endpoint_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('status_info', sa.String(length=512), nullable=True),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('traffic_ratio', sa.Double(), nullable=False),
    sa.Column('target_host', sa.String(length=256), nullable=True),
    sa.Column('target_port', sa.Integer(), nullable=True),
    sa.Column('health_failures', sa.Integer(), nullable=False),
    sa.Column('last_health_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('healthy_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('modified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_routes_endpoint_id_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routes'))
    )
    with op.batch_alter_table('routes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routes_endpoint_id'), ['endpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_routes_session_id'), ['session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_routes_status'), ['status'], unique=False)

    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_service', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('model_service')

    with op.batch_alter_table('routes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routes_status'))
        batch_op.drop_index(batch_op.f('ix_routes_session_id'))
        batch_op.drop_index(batch_op.f('ix_routes_endpoint_id'))

    op.drop_table('routes')
    with op.batch_alter_table('endpoint_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_tokens_endpoint_id'))

    op.drop_table('endpoint_tokens')
    with op.batch_alter_table('endpoint_errors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_errors_endpoint_id'))

    op.drop_table('endpoint_errors')
    with op.batch_alter_table('endpoint_auto_scaling_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoint_auto_scaling_rules_endpoint_id'))

    op.drop_table('endpoint_auto_scaling_rules')
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_endpoints_status'))
        batch_op.drop_index(batch_op.f('ix_endpoints_project_id'))
        batch_op.drop_index(batch_op.f('ix_endpoints_owner_user_id'))
        batch_op.drop_index(batch_op.f('ix_endpoints_owner_access_key'))
        batch_op.drop_index(batch_op.f('ix_endpoints_name'))
        batch_op.drop_index(batch_op.f('ix_endpoints_model_folder_id'))
        batch_op.drop_index(batch_op.f('ix_endpoints_created_at'))

    op.drop_table('endpoints')
