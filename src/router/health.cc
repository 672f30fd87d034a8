#include "router/health.h"
