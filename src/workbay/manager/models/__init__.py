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
from .serving import AutoScalingRule, ModelService, Route, ServiceError, ServiceToken
from .storage import Folder, FolderInvitation, FolderShare, QuotaLimit

__all__ = [
    "AutoScalingRule", "ModelService", "Route", "ServiceError", "ServiceToken",
    "Agent", "ComputeSession", "Image", "Kernel", "ResourceGroupForDomain", "ResourceGroupForProject",
    "ResourcePreset", "SessionDependency",
    "Base", "Domain", "Keypair", "KeypairResourcePolicy", "Project", "ProjectMember",
    "ProjectResourcePolicy", "ResourceGroup", "SystemSetting", "User", "UserResourcePolicy",
    "QuotaLimit", "Folder", "FolderInvitation", "FolderShare",
]
