// Opens an F-Droid index JAR the way the F-Droid client's index library
// does (java.util.jar.JarFile with verification, as on Android) and applies
// its rules: the JSON entry is signed by exactly one code signer with
// exactly one certificate of at least 256 bytes, whose SHA-256 is the
// expected fingerprint, and no entry attribute names a forbidden digest
// (SHA1-Digest, MD5-Digest).
//
//     java VerifyJar.java FILE.jar ENTRY.json FINGERPRINT
//
// Prints "ok" and exits 0, or prints why and exits 1.

import java.io.File;
import java.io.InputStream;
import java.security.CodeSigner;
import java.security.MessageDigest;
import java.security.cert.Certificate;
import java.util.HexFormat;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

public class VerifyJar {
    static void fail(String why) {
        System.out.println(why);
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        try (JarFile jar = new JarFile(new File(args[0]), true)) {
            JarEntry entry = (JarEntry) jar.getEntry(args[1]);
            if (entry == null) fail("no entry " + args[1]);
            Attributes attributes = entry.getAttributes();
            if (attributes == null) fail("no attributes for " + args[1]);
            for (Object key : attributes.keySet()) {
                String name = key.toString();
                if (name.equals("SHA1-Digest") || name.equals("MD5-Digest")) {
                    fail("forbidden digest " + name);
                }
            }
            try (InputStream in = jar.getInputStream(entry)) {
                in.readAllBytes();
            } catch (SecurityException e) {
                fail("signature: " + e.getMessage());
            }
            CodeSigner[] signers = entry.getCodeSigners();
            if (signers == null || signers.length != 1) fail("not one code signer");
            var certs = signers[0].getSignerCertPath().getCertificates();
            if (certs.size() != 1) fail("not one certificate");
            byte[] der = ((Certificate) certs.get(0)).getEncoded();
            if (der.length < 256) fail("certificate of " + der.length + " bytes");
            String fingerprint =
                HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(der));
            if (!fingerprint.equals(args[2])) fail("fingerprint " + fingerprint);
        }
        System.out.println("ok");
    }
}
