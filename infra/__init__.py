"""Infrastructure: CloudFormation for AWS and the offline emulation in infra/local."""
