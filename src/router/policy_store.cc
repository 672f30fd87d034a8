#include "router/policy_store.h"
