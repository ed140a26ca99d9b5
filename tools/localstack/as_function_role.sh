#!/bin/sh
# cargo's runner for the functions under `cargo lambda watch` on the local stack: each function calls
# AWS with its own role's key, as on AWS, where Lambda hands each function its role's credentials.
# The local IAM (tools/localstack/local_iam.py) then enforces that role's policy from the template.
# `cargo lambda watch` names the function in AWS_LAMBDA_FUNCTION_NAME; anything else runs as it was.
if [ -n "${AWS_LAMBDA_FUNCTION_NAME:-}" ]; then
  export AWS_ACCESS_KEY_ID="role-$AWS_LAMBDA_FUNCTION_NAME"
fi
exec "$@"
