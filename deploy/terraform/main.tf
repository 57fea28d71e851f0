# What this configuration reads from the account and the existing EKS cluster.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_eks_cluster" "this" {
  name = var.eks_cluster_name
}

locals {
  name       = "circulate-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  db_family  = "postgres${split(".", var.db_engine_version)[0]}"
}

# The cluster's pods reach the broker and the database by private address: both must be in its VPC.
check "eks_cluster_is_in_the_vpc" {
  assert {
    condition     = data.aws_eks_cluster.this.vpc_config[0].vpc_id == var.vpc_id
    error_message = "vpc_id is not the VPC of the EKS cluster eks_cluster_name."
  }
}
