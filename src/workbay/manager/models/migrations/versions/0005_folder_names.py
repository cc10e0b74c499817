"""folder names: tables vfolders, vfolder_invitations, vfolder_shares become folders,
folder_invitations, folder_shares; their vfolder_id columns become folder_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 22:30:00

Backend.AI's ``vfolder`` stays on the wire only; the schema says folder like the code.  Each table
is created under its new name with every constraint and index named by the metadata's naming
convention, its rows copied, and the old table dropped — one path for SQLite (whose ALTER TABLE
can rename neither constraints nor the names baked into a table's SQL) and PostgreSQL alike, so
both end with exactly the schema the models declare.  The tables are small (one row per folder,
share and invitation).  Downgrade is the same copy in the other direction.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# The column of invitations and shares that points at the folder.
OLD_FK, NEW_FK = "vfolder_id", "folder_id"


def _folders(name: str) -> None:
    op.create_table(name,
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=128), nullable=False),
    sa.Column('quota_scope_id', sa.String(length=64), nullable=False),
    sa.Column('ownership_type', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('project_id', sa.Uuid(), nullable=True),
    sa.Column('domain_name', sa.String(length=64), nullable=False),
    sa.Column('creator', sa.String(length=64), nullable=False),
    sa.Column('usage_mode', sa.String(length=16), nullable=False),
    sa.Column('permission', sa.String(length=4), nullable=False),
    sa.Column('cloneable', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_changed', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['domain_name'], ['domains.name'], name=f'fk_{name}_domain_name_domains'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=f'fk_{name}_project_id_projects',
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.uuid'], name=f'fk_{name}_user_id_users', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=f'pk_{name}'),
    sa.UniqueConstraint('quota_scope_id', 'name', name=f'uq_{name}_quota_scope_id_name'))
    for column in ('project_id', 'quota_scope_id', 'status', 'user_id'):
        op.create_index(f'ix_{name}_{column}', name, [column], unique=False)


def _invitations(name: str, folders: str, fk: str) -> None:
    op.create_table(name,
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column(fk, sa.Uuid(), nullable=False),
    sa.Column('inviter', sa.String(length=64), nullable=False),
    sa.Column('invitee', sa.String(length=64), nullable=False),
    sa.Column('permission', sa.String(length=4), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('modified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint([fk], [f'{folders}.id'], name=f'fk_{name}_{fk}_{folders}', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=f'pk_{name}'))
    op.create_index(f'ix_{name}_invitee', name, ['invitee'], unique=False)
    op.create_index(f'ix_{name}_{fk}', name, [fk], unique=False)


def _shares(name: str, folders: str, fk: str) -> None:
    op.create_table(name,
    sa.Column(fk, sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('permission', sa.String(length=4), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.uuid'], name=f'fk_{name}_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint([fk], [f'{folders}.id'], name=f'fk_{name}_{fk}_{folders}', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint(fk, 'user_id', name=f'pk_{name}'))
    op.create_index(f'ix_{name}_user_id', name, ['user_id'], unique=False)


def _copy(source: str, target: str, renames: dict[str, str]) -> None:
    """INSERT INTO target SELECT … FROM source, every column, ``renames`` mapping source → target names."""
    columns = [c["name"] for c in sa.inspect(op.get_bind()).get_columns(source)]
    src = ", ".join(f'"{c}"' for c in columns)
    dst = ", ".join(f'"{renames.get(c, c)}"' for c in columns)
    op.execute(f'INSERT INTO "{target}" ({dst}) SELECT {src} FROM "{source}"')


def _move(names: dict[str, str], old_fk: str, new_fk: str) -> None:
    """Recreate the three tables under ``names`` (old → new) and drop the old ones."""
    folders = names["folders"]
    _folders(folders)
    _copy(names["_folders"], folders, {})
    _invitations(names["invitations"], folders, new_fk)
    _copy(names["_invitations"], names["invitations"], {old_fk: new_fk})
    _shares(names["shares"], folders, new_fk)
    _copy(names["_shares"], names["shares"], {old_fk: new_fk})
    # Children first: their foreign keys point at the old folders table.
    for old in (names["_shares"], names["_invitations"], names["_folders"]):
        op.drop_table(old)  # its indexes go with it


def upgrade() -> None:
    _move({"_folders": "vfolders", "_invitations": "vfolder_invitations", "_shares": "vfolder_shares",
           "folders": "folders", "invitations": "folder_invitations", "shares": "folder_shares"},
          OLD_FK, NEW_FK)


def downgrade() -> None:
    _move({"_folders": "folders", "_invitations": "folder_invitations", "_shares": "folder_shares",
           "folders": "vfolders", "invitations": "vfolder_invitations", "shares": "vfolder_shares"},
          NEW_FK, OLD_FK)
