"""One click command per module; main.py assembles them into `atc-xaccount`."""
