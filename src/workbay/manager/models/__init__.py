from .base import Base
from .compute import (
    Agent,
    ComputeSession,
    Image,
    Kernel,
    ResourceGroupForDomain,
    ResourceGroupForProject,
    ResourcePreset,
    SessionDependency,
)
from .identity import (
    Domain,
    Keypair,
    KeypairResourcePolicy,
    Project,
    ProjectMember,
    ProjectResourcePolicy,
    ResourceGroup,
    SystemSetting,
    User,
    UserResourcePolicy,
)
from .storage import Folder, FolderInvitation, FolderShare, QuotaLimit

__all__ = [
    "Agent", "ComputeSession", "Image", "Kernel", "ResourceGroupForDomain", "ResourceGroupForProject",
    "ResourcePreset", "SessionDependency",
    "Base", "Domain", "Keypair", "KeypairResourcePolicy", "Project", "ProjectMember",
    "ProjectResourcePolicy", "ResourceGroup", "SystemSetting", "User", "UserResourcePolicy",
    "QuotaLimit", "Folder", "FolderInvitation", "FolderShare",
]
