"""Domain library shared by every atc-xaccount Lambda: pure policy logic, models, errors."""
