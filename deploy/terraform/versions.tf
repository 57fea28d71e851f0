# Circulate on AWS: Amazon MQ for RabbitMQ (a 3-node cluster across AZs), RDS PostgreSQL (multi-AZ),
# their credentials in Secrets Manager, and security groups that admit only the EKS workloads.
# The EKS cluster and its VPC already exist; this configuration takes them as variables.
# See docs/operations/aws.md.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }

  # State holds the generated broker password: keep it in an encrypted, access-controlled backend,
  # for example S3 with a KMS key (configured per environment with `terraform init -backend-config`).
  backend "s3" {}
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      application = "circulate"
      environment = var.environment
    })
  }
}
