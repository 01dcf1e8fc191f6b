"""Value types shared by every layer: identifiers, enumerations, OBIS codes, quality flags."""
