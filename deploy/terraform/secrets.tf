# Credentials: generated here or by RDS, stored in Secrets Manager under the customer key, never in
# the repository or a variable. Terraform's state holds the broker password: keep the state in an
# encrypted, access-controlled backend (versions.tf).

# Amazon MQ: 12+ characters, no commas, colons or equals signs; letters and digits only, so the
# password needs no escaping inside the AMQP URL.
resource "random_password" "rabbitmq" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "rabbitmq" {
  #checkov:skip=CKV2_AWS_57:Amazon MQ has no managed rotation for RabbitMQ users; rotate by changing the user through the management API and writing a new version (docs/operations/aws.md).
  name                    = "${local.name}/rabbitmq"
  description             = "Circulate RabbitMQ: user, password, CIRCULATE_AMQP_URL and the management API URL"
  kms_key_id              = aws_kms_key.circulate.arn
  recovery_window_in_days = 30
}

locals {
  amqp_endpoint = aws_mq_broker.circulate.instances[0].endpoints[0]
}

resource "aws_secretsmanager_secret_version" "rabbitmq" {
  secret_id = aws_secretsmanager_secret.rabbitmq.id
  secret_string = jsonencode({
    username       = var.mq_admin_username
    password       = random_password.rabbitmq.result
    amqp_url       = "${replace(local.amqp_endpoint, "amqps://", "amqps://${var.mq_admin_username}:${random_password.rabbitmq.result}@")}/${var.mq_vhost}"
    management_url = aws_mq_broker.circulate.instances[0].console_url
  })
}

# What the cluster's secret reader (External Secrets Operator's IAM role, or the pods' own) needs.
data "aws_iam_policy_document" "read_secrets" {
  statement {
    sid     = "ReadCirculateSecrets"
    actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [
      aws_secretsmanager_secret.rabbitmq.arn,
      aws_db_instance.circulate.master_user_secret[0].secret_arn,
    ]
  }

  statement {
    sid       = "DecryptCirculateSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.circulate.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.aws_region}.amazonaws.com"]
    }
  }
}
