from .base import Base
from .identity import (
    Domain, Keypair, KeypairResourcePolicy, Project, ProjectMember, ProjectResourcePolicy,
    ResourceGroup, SystemSetting, User, UserResourcePolicy,
)

__all__ = [
    "Base", "Domain", "Keypair", "KeypairResourcePolicy", "Project", "ProjectMember",
    "ProjectResourcePolicy", "ResourceGroup", "SystemSetting", "User", "UserResourcePolicy",
]
