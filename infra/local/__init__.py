"""AWS's part, played offline: emulator, API Gateway front, SQS event source, schedule."""
