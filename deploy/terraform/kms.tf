# One customer-managed key for everything at rest: the database and its Performance Insights, the
# secrets, and the CloudWatch log groups. Rotated yearly by KMS.

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" is the key itself; the account root statement is the default key policy, which lets IAM policies grant use of the key.
  #checkov:skip=CKV_AWS_111:As above: in a key policy "*" means this key only, not every resource.
  #checkov:skip=CKV_AWS_356:As above: a key policy cannot name its own key's ARN before the key exists; "*" is that key.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncrypt"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "circulate" {
  description             = "${local.name}: database, secrets and logs at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "circulate" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.circulate.key_id
}
