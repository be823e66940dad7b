//! Android's names, in words a phone user reads: permissions as the
//! system's install dialogs put them, and API levels as Android versions.

/// What a permission lets the app do, and whether Android asks the user
/// before granting it (a "dangerous" permission), for the permissions apps
/// ask for most; `None` for others (the page shows their name alone).
pub(crate) fn permission(name: &str) -> Option<(&'static str, bool)> {
    let short = name.strip_prefix("android.permission.")?;
    Some(match short {
        "INTERNET" => ("Have full network access", false),
        "ACCESS_NETWORK_STATE" => ("View network connections", false),
        "ACCESS_WIFI_STATE" => ("View Wi-Fi connections", false),
        "CHANGE_WIFI_STATE" => ("Connect to and disconnect from Wi-Fi", false),
        "CHANGE_NETWORK_STATE" => ("Change network connectivity", false),
        "BLUETOOTH" | "BLUETOOTH_ADMIN" => ("Pair with Bluetooth devices", false),
        "BLUETOOTH_CONNECT" => ("Connect to paired Bluetooth devices", true),
        "BLUETOOTH_SCAN" => ("Find nearby Bluetooth devices", true),
        "NFC" => ("Use NFC", false),
        "CAMERA" => ("Take pictures and videos", true),
        "RECORD_AUDIO" => ("Record audio", true),
        "ACCESS_FINE_LOCATION" => ("Access your precise location", true),
        "ACCESS_COARSE_LOCATION" => ("Access your approximate location", true),
        "ACCESS_BACKGROUND_LOCATION" => ("Access your location in the background", true),
        "READ_CONTACTS" => ("Read your contacts", true),
        "WRITE_CONTACTS" => ("Modify your contacts", true),
        "GET_ACCOUNTS" => ("Find accounts on the device", true),
        "READ_CALENDAR" => ("Read calendar events", true),
        "WRITE_CALENDAR" => ("Add or modify calendar events", true),
        "READ_SMS" => ("Read your text messages", true),
        "SEND_SMS" => ("Send text messages (this may cost money)", true),
        "RECEIVE_SMS" => ("Receive text messages", true),
        "READ_PHONE_STATE" => ("Read phone status and identity", true),
        "CALL_PHONE" => ("Directly call phone numbers (this may cost money)", true),
        "READ_CALL_LOG" => ("Read your call log", true),
        "READ_EXTERNAL_STORAGE" => ("Read the contents of your shared storage", true),
        "WRITE_EXTERNAL_STORAGE" => ("Modify or delete the contents of your shared storage", true),
        "READ_MEDIA_IMAGES" => ("Read images from shared storage", true),
        "READ_MEDIA_VIDEO" => ("Read videos from shared storage", true),
        "READ_MEDIA_AUDIO" => ("Read audio files from shared storage", true),
        "MANAGE_EXTERNAL_STORAGE" => ("Access all files", true),
        "POST_NOTIFICATIONS" => ("Show notifications", true),
        "BODY_SENSORS" => ("Access body sensors (like heart rate monitors)", true),
        "ACTIVITY_RECOGNITION" => ("Recognize physical activity", true),
        "VIBRATE" => ("Control vibration", false),
        "WAKE_LOCK" => ("Prevent the phone from sleeping", false),
        "RECEIVE_BOOT_COMPLETED" => ("Run at startup", false),
        "FOREGROUND_SERVICE" => ("Run a foreground service", false),
        "REQUEST_INSTALL_PACKAGES" => ("Request to install apps", false),
        "REQUEST_DELETE_PACKAGES" => ("Request to delete apps", false),
        "QUERY_ALL_PACKAGES" => ("See all apps on the device", false),
        "SYSTEM_ALERT_WINDOW" => ("Display over other apps", false),
        "USE_BIOMETRIC" | "USE_FINGERPRINT" => ("Use biometric hardware", false),
        "SCHEDULE_EXACT_ALARM" => ("Schedule exact alarms", false),
        "SET_WALLPAPER" => ("Set the wallpaper", false),
        _ => return None,
    })
}

/// The Android version that introduced API level `sdk`, as the system's
/// settings name it (`21` is `Android 5.0`); `None` for 0 (unknown) and
/// levels this table does not know yet.
pub(crate) fn version(sdk: u32) -> Option<&'static str> {
    const NAMES: [&str; 36] = [
        "1.0", "1.1", "1.5", "1.6", "2.0", "2.0.1", "2.1", "2.2", "2.3", "2.3.3", "3.0", "3.1",
        "3.2", "4.0", "4.0.3", "4.1", "4.2", "4.3", "4.4", "4.4W", "5.0", "5.1", "6.0", "7.0",
        "7.1", "8.0", "8.1", "9", "10", "11", "12", "12L", "13", "14", "15", "16",
    ];
    let index = usize::try_from(sdk).ok()?.checked_sub(1)?;
    NAMES.get(index).copied()
}

/// `sdk` for people: `Android 8.0 (API 26)`, or `API 40` for a level this
/// table does not know.
pub(crate) fn sdk(sdk: u32) -> String {
    match version(sdk) {
        Some(v) => format!("Android {v} (API {sdk})"),
        None => format!("API {sdk}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_levels_name_their_android_version() {
        assert_eq!(version(0), None);
        assert_eq!(version(1), Some("1.0"));
        assert_eq!(version(21), Some("5.0"));
        assert_eq!(version(26), Some("8.0"));
        assert_eq!(version(28), Some("9"));
        assert_eq!(version(32), Some("12L"));
        assert_eq!(version(34), Some("14"));
        assert_eq!(version(36), Some("16"));
        assert_eq!(version(37), None);
        assert_eq!(sdk(23), "Android 6.0 (API 23)");
        assert_eq!(sdk(99), "API 99");
    }

    #[test]
    fn permissions_in_words() {
        assert_eq!(
            permission("android.permission.CAMERA"),
            Some(("Take pictures and videos", true))
        );
        assert_eq!(
            permission("android.permission.INTERNET"),
            Some(("Have full network access", false))
        );
        assert_eq!(permission("com.example.permission.C2D"), None);
        assert_eq!(permission("CAMERA"), None);
    }
}
