"""``shipyard export``: a deployment as infrastructure as code (CloudFormation, CDK, Terraform).

:mod:`.model` is the one description every writer reads: a :class:`~.model.Stack` of resources in
CloudFormation's own types and property shapes, with parameters for what a team changes. ``collect`` reads it
from the deployment's record and its live resources; each writer turns it into one format.
"""
