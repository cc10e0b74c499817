from .base import Base
from .compute import (
    Agent, ComputeSession, Image, Kernel, ResourceGroupForDomain, ResourceGroupForProject, ResourcePreset,
    SessionDependency,
)
from .identity import (
    Domain, Keypair, KeypairResourcePolicy, Project, ProjectMember, ProjectResourcePolicy,
    ResourceGroup, SystemSetting, User, UserResourcePolicy,
)
from .storage import QuotaLimit, VFolder, VFolderInvitation, VFolderShare

__all__ = [
    "Agent", "ComputeSession", "Image", "Kernel", "ResourceGroupForDomain", "ResourceGroupForProject",
    "ResourcePreset", "SessionDependency",
    "Base", "Domain", "Keypair", "KeypairResourcePolicy", "Project", "ProjectMember",
    "ProjectResourcePolicy", "ResourceGroup", "SystemSetting", "User", "UserResourcePolicy",
    "QuotaLimit", "VFolder", "VFolderInvitation", "VFolderShare",
]
